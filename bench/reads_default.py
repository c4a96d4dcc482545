"""Cached reads in the configuration a user starts: `tradeguard serve` as it comes, against the bare app.

One account's open positions, read by wrk over 100 connections from plain `tradeguard serve` (one
process, every setting at its default except the database, the cache and the two secrets the
seeded tokens and devices were made with), beside the bare ASGI app served with the CLI's own
uvicorn options (`bench/serve_bare_like_cli.py`), alternated in one run:

    .venv/bin/python -m bench reads_default                         # embedded: SQLite, in-process cache
    .venv/bin/python -m bench reads_default --redis-url redis://127.0.0.1:6379/14
    .venv/bin/python -m bench reads_default --env TRADEGUARD_RUN_WORKER_IN_API=false

Writes bench/results/reads-default.json.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from bench import environment, harness, wrk
from bench.arguments import console, server_env
from bench.counters import CpuMeter
from bench.reads import ENDPOINTS, warm
from bench.report import write_json
from bench.seed import new_secrets, seed_database
from bench.servers import ServerSpec, running

SERVE = ("-c", "from tradeguard.cli import app; app()", "serve", "--port", "{port}")
BARE = ("bench/serve_bare_like_cli.py", "{port}")


async def run_reads_default(
    *,
    redis_url: str,
    env: dict[str, str],
    connections: int,
    duration: float,
    rounds: int,
    scratch: Path,
) -> dict:
    database_url = f"sqlite+aiosqlite:///{scratch / 'tradeguard.db'}"
    jwt_secret, secret_key = new_secrets()
    await harness.flush_redis(redis_url)
    engine = create_async_engine(database_url)
    try:
        seed = await seed_database(
            engine,
            users=1,
            accounts_per_user=1,
            positions=10,
            jwt_secret=jwt_secret,
            secret_key=secret_key,
            redis_url=redis_url,
        )
    finally:
        await engine.dispose()
    settings = {
        "TRADEGUARD_DATABASE_URL": database_url,
        "TRADEGUARD_DATA_DIR": str(scratch),
        "TRADEGUARD_JWT_SECRET": jwt_secret,
        "TRADEGUARD_SECRET_KEY": secret_key,
        **({"TRADEGUARD_REDIS_URL": redis_url} if redis_url else {}),
        **env,
    }
    spec = ServerSpec(app="tradeguard serve", command=SERVE, env=settings)
    path = ENDPOINTS["positions"]
    account = seed.accounts[0]
    callers = [(seed.users[0].token, account.account_id)]
    result: dict = {
        "benchmark": "reads_default",
        "environment": await environment.describe(
            database_url=database_url, redis_url=redis_url, server=spec.describe()
        ),
        "load": {
            "generator": "wrk (C), one caller and one account",
            "connections": connections,
            "duration_s": duration,
            "path": path,
        },
        "rounds": [],
    }
    async with running(spec, log_dir=scratch) as server:
        await harness.ensure_primed(seed, server.port, seed.accounts)
        size = await warm(server.port, callers, path)
        bare_spec = ServerSpec(
            app="bare app, served as tradeguard serve serves",
            command=BARE,
            env={"TG_BARE_SIZES": f"positions={size}"},
            ready_path="/",
        )
        result["environment"]["bare_server"] = bare_spec.describe()
        async with running(bare_spec, log_dir=scratch) as bare:
            for _ in range(rounds):
                options = dict(connections=connections, threads=2, duration=duration)
                bare_run = await _measured(bare, f"{bare.url}/positions", **options)
                await warm(server.port, callers, path)
                ours = await _measured(server, server.url, callers=callers, path=path, **options)
                result["rounds"].append(
                    {
                        "bare": bare_run,
                        "tradeguard": ours,
                        "ratio": round(ours["requests_per_s"] / bare_run["requests_per_s"], 3),
                    }
                )
    return result


async def _measured(server, url: str, **options) -> dict:
    meter = CpuMeter(server.pids())
    began = time.perf_counter()
    run = await asyncio.to_thread(wrk.run, url, **options)
    run["cpu"] = meter.read(time.perf_counter() - began)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench reads_default",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--redis-url", default="", help="serve with this Redis (empty: the in-process cache)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=harness.RESULTS / "reads-default.json")
    args = parser.parse_args()
    if not wrk.available():
        console.print("wrk is not installed (apt-get install wrk)")
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="tradeguard-reads-default-"))
    try:
        result = asyncio.run(
            run_reads_default(
                redis_url=args.redis_url,
                env=server_env(args.env),
                connections=args.connections,
                duration=args.duration,
                rounds=args.rounds,
                scratch=scratch,
            )
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for index, measured in enumerate(result["rounds"], start=1):
        ours, bare = measured["tradeguard"], measured["bare"]
        console.print(
            f"round {index}: tradeguard {ours['requests_per_s']:,.0f} req/s, p99 "
            f"{ours['latency_ms'].get('p99_ms')} ms, {ours['error_count']} errors; bare "
            f"{bare['requests_per_s']:,.0f} req/s, p99 {bare['latency_ms'].get('p99_ms')} ms; "
            f"ratio {measured['ratio']}"
        )
    console.print(f"written {write_json(result, args.output)}")
    return 0
