"""Ingest throughput: signed snapshots of 10 positions, reconciled and guarded, as fast as they are answered.

For each size N of the active account set (1, 10, ..., 10,000) a closed loop keeps
min(concurrency, N) snapshots in flight, each sender owning its own accounts (no two in-flight
snapshots lock the same account). Every snapshot matches the account's expected trades, moves
prices, updates ten positions, the equity history and the account state, and invalidates the
account's cache: the steady state of a bridge on a 5-second cadence. The first snapshot of each
account (creating its positions) is measured apart, as priming.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2    # once
    .venv/bin/python -m bench ingest --duration 15 --concurrency 32 --profile

Writes bench/results/ingest.json.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import environment, harness, load, profiling
from bench.arguments import base_parser, console, progress_printer, server_env
from bench.counters import CpuMeter
from bench.report import environment_line, ingest_table, profile_table, write_json
from bench.seed import Seed
from bench.servers import HOST, running

SIZES = (1, 10, 100, 1_000, 10_000)


def _per_snapshot(cpu: dict, snapshots: int) -> dict:
    if not snapshots:
        return {}
    return {group: round(seconds * 1000 / snapshots, 3) for group, seconds in cpu["cpu_seconds"].items()}


async def run_ingest(
    seed: Seed,
    *,
    sizes: Sequence[int] = SIZES,
    workers: int = 2,
    concurrency: int = 32,
    duration: float = 15.0,
    warmup: float = 2.0,
    server_env: dict[str, str] | None = None,
    profile_dir: Path | None = None,
    log_dir: Path | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict:
    sizes = [size for size in sizes if size <= len(seed.accounts)]
    note = on_phase or (lambda _phase, _fraction: None)
    await harness.flush_redis(seed.redis_url)
    spec = harness.server_spec(seed, workers=workers, **(server_env or {}))
    results: dict = {
        "benchmark": "ingest",
        "environment": await environment.describe(
            database_url=seed.database_url, redis_url=seed.redis_url, server=spec.describe()
        ),
        "load": {
            "generator": "bench.client (asyncio, keep-alive HTTP/1.1), in the bench process",
            "concurrency": concurrency,
            "duration_s": duration,
            "warmup_s": warmup,
            "positions_per_snapshot": seed.positions_per_account,
            "note": "the load generator runs on the same 2 cores as the server, PostgreSQL and Redis",
        },
        "runs": [],
    }
    async with running(spec, log_dir=log_dir) as server:
        note("priming", 0.0)
        started = time.perf_counter()
        primed = await harness.ensure_primed(seed, server.port, seed.accounts[: max(sizes)])
        results["priming"] = primed and primed | {"seconds": round(time.perf_counter() - started, 1)}
        for index, size in enumerate(sizes):
            signers = harness.signers_for(seed.accounts[:size])
            meter = CpuMeter(server.pids())
            began = time.perf_counter()
            run = await load.closed_loop(
                HOST,
                server.port,
                signers,
                concurrency=concurrency,
                duration=duration,
                warmup=warmup,
                on_tick=lambda fraction, i=index, n=size: note(f"{n} accounts", (i + fraction) / len(sizes)),
            )
            cpu = meter.read(time.perf_counter() - began)
            run["cpu"] = cpu
            run["cpu_ms_per_snapshot"] = _per_snapshot(cpu, run["sent_including_warmup"])
            results["runs"].append(run)
        if profile_dir is not None and sizes:
            # Apart from the measured runs: sampling costs the sampled worker a little CPU.
            size = max(sizes)
            note(f"{size} accounts: profiling", 0.99)
            profile_path = profile_dir / f"ingest-{size}.raw.txt"
            profiler = profiling.start(server.pids()[0], duration, profile_path)
            run = await load.closed_loop(
                HOST,
                server.port,
                harness.signers_for(seed.accounts[:size]),
                concurrency=concurrency,
                duration=duration,
                warmup=0.5,
            )
            profiling.finish(profiler)
            if profile_path.exists():
                results["profile"] = {
                    "accounts": size,
                    "snapshots_per_s_while_sampled": run["snapshots_per_s"],
                    "raw": str(profile_path),
                    **profiling.read_profile(profile_path),
                }
    best = max((run["snapshots_per_s"] or 0 for run in results["runs"]), default=0)
    largest = results["runs"][-1] if results["runs"] else {}
    results["summary"] = {
        "best_snapshots_per_s": best,
        "snapshots_per_s_at_largest": largest.get("snapshots_per_s"),
        "largest_accounts": largest.get("accounts"),
        "target_snapshots_per_s": 2000,
        "target_met": bool(largest.get("snapshots_per_s") and largest["snapshots_per_s"] >= 2000),
    }
    return results


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    seed = Seed.load(args.seed)
    result = asyncio.run(
        run_ingest(
            seed,
            sizes=[int(size) for size in args.sizes.split(",")],
            workers=args.workers,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            server_env=server_env(args.env),
            profile_dir=harness.RESULTS / "profiles" if args.profile else None,
            log_dir=harness.RESULTS / "logs",
            on_phase=progress_printer("ingest"),
        )
    )
    path = write_json(result, args.output or harness.RESULTS / "ingest.json")
    console.print(environment_line(result["environment"]))
    console.print(ingest_table(result))
    if "profile" in result:
        console.print(profile_table(result["profile"], "ingest: where a worker's CPU goes"))
    console.print(f"written {path}")
    return 0
