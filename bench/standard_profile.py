"""The standard load profile, end to end: start the server from the seed, run Locust headless, stop.

    .venv/bin/python -m bench standard_profile --run-time 90s      # bridges on a 5 s cadence, 30 s warm-up
    .venv/bin/python -m bench standard_profile --run-time 60s --bridge-cadence 0   # reads + 1/11 ingests
    .venv/bin/python -m bench standard_profile --run-time 90s --operators 1   # and an operator's platform page
    .venv/bin/python -m bench standard_profile --run-time 60s --env TRADEGUARD_CACHE_TTL_SECONDS=60 \
        --ingest-share 0.02        # or TRADEGUARD_BENCH_INGEST_SHARE=0.02 in the environment

Runs bench/locustfile.py against a fresh server (uvicorn, N workers, PostgreSQL + Redis from the
seed) with 100 users at a 10/s ramp, and the hit rate summed over every worker. Writes
bench/results/locust.json (and whatever --output names).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import environment, harness
from bench.arguments import base_parser, console, server_env
from bench.counters import CpuMeter
from bench.harness import RESULTS
from bench.report import environment_line, write_json
from bench.seed import Seed
from bench.servers import running

HERE = Path(__file__).resolve().parent


async def run(args) -> dict:
    seed = Seed.load(args.seed)
    await harness.flush_redis(seed.redis_url)
    spec = harness.server_spec(seed, workers=args.workers, **server_env(args.env))
    env_block = await environment.describe(
        database_url=seed.database_url, redis_url=seed.redis_url, server=spec.describe()
    )
    output = args.output or RESULTS / "locust.json"
    async with running(spec, log_dir=RESULTS / "logs") as server:
        users = seed.users[: args.users]
        await harness.ensure_primed(seed, server.port, [seed.account(a) for u in users for a in u.accounts])
        env = {
            **os.environ,
            "TG_SEED": str(args.seed),
            "TG_RESULT": str(output),
            "TG_INGEST_WEIGHT": str(
                args.ingest_weight if args.ingest_weight is not None else 0 if args.bridge_cadence else 1
            ),
            "TG_BRIDGE_CADENCE": str(args.bridge_cadence),
            "TG_WARMUP": str(args.warmup),
            "TG_WAIT_MIN": str(args.wait_min),
            "TG_WAIT_MAX": str(args.wait_max),
            "TG_OPERATORS": str(args.operators),
            "TG_OPERATOR_PERIOD": str(args.operator_period),
        }
        if args.ingest_share is not None:
            env["TRADEGUARD_BENCH_INGEST_SHARE"] = str(args.ingest_share)
        else:
            env.pop("TRADEGUARD_BENCH_INGEST_SHARE", None)
        argv = [str(Path(sys.executable).parent / "locust"), "-f", str(HERE / "locustfile.py"), "--headless"]
        argv += [
            "-u",
            str(args.users + args.operators),
            "-r",
            str(args.spawn_rate),
            "-t",
            args.run_time,
            "--host",
            server.url,
        ]
        argv += ["--only-summary", "--loglevel", "WARNING"]
        meter = CpuMeter(server.pids())
        began = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600, check=False)
        cpu = meter.read(time.perf_counter() - began)
    console.print(done.stdout[-3000:])
    if not output.exists():
        console.print(done.stderr[-5000:])
    if done.returncode not in (0, 1):
        console.print(done.stderr[-3000:])
        raise SystemExit(f"locust exited with {done.returncode}")
    result = json.loads(output.read_text())
    result["environment"] = env_block
    locust_env = " ".join(
        f"{name}={env[name]}"
        for name in (
            "TRADEGUARD_BENCH_INGEST_SHARE",
            "TG_BRIDGE_CADENCE",
            "TG_INGEST_WEIGHT",
            "TG_WARMUP",
            "TG_OPERATORS",
            "TG_OPERATOR_PERIOD",
        )
        if name in env
    )
    result["command"] = " ".join(
        ([locust_env] if locust_env else []) + argv[:1] + ["-f", "bench/locustfile.py"] + argv[3:]
    )
    result["cpu"] = cpu
    result["server_settings"] = server_env(args.env)
    result["ingest_share_setting"] = args.ingest_share
    result["bridge_cadence_setting"] = args.bridge_cadence
    result["targets"] = {
        "hit_rate_target": 0.95,
        "hit_rate_met": bool(result["cache"].get("hit_rate") and result["cache"]["hit_rate"] >= 0.95),
    }
    write_json(result, output)
    console.print(environment_line(env_block))
    return result


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--run-time", default="60s")
    parser.add_argument(
        "--bridge-cadence",
        type=float,
        default=5.0,
        help="seconds between each account's snapshots, sent beside the reads (the design's 5 s); 0 for none",
    )
    parser.add_argument(
        "--ingest-weight",
        type=int,
        default=None,
        help="ingest task weight against reads 5/3/2 (default 1 without a bridge cadence, else 0)",
    )
    parser.add_argument(
        "--ingest-share",
        type=float,
        default=os.environ.get("TRADEGUARD_BENCH_INGEST_SHARE") or None,
        help="ingest share of the tasks, e.g. 0.02 (wins over --ingest-weight; default from "
        "TRADEGUARD_BENCH_INGEST_SHARE)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=30.0,
        help="seconds after which latencies and the hit rate are measured (0: the whole run)",
    )
    parser.add_argument(
        "--operators",
        type=int,
        default=0,
        help="operators polling the platform page beside the users (needs a seed with --operators)",
    )
    parser.add_argument(
        "--operator-period", type=float, default=1.0, help="seconds between an operator's polls"
    )
    parser.add_argument("--wait-min", type=float, default=0.5)
    parser.add_argument("--wait-max", type=float, default=1.5)
    args = parser.parse_args()
    asyncio.run(run(args))
    return 0
