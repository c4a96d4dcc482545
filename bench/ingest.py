"""Ingest throughput on PostgreSQL, for 1 to 10,000 active accounts.

    .venv/bin/python bench/seed.py --users 5000 --accounts-per-user 2    # once
    .venv/bin/python bench/ingest.py --duration 15 --concurrency 32 --profile

Writes bench/results/ingest.json.
"""

from __future__ import annotations

import asyncio
import sys

from _common import base_parser, console, progress_printer, server_env

from tradeguard.bench.harness import RESULTS
from tradeguard.bench.ingest import SIZES, run_ingest
from tradeguard.bench.report import environment_line, ingest_table, profile_table, write_json
from tradeguard.bench.seed import Seed


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
            profile_dir=RESULTS / "profiles" if args.profile else None,
            log_dir=RESULTS / "logs",
            on_phase=progress_printer("ingest"),
        )
    )
    path = write_json(result, args.output or RESULTS / "ingest.json")
    console.print(environment_line(result["environment"]))
    console.print(ingest_table(result))
    if "profile" in result:
        console.print(profile_table(result["profile"], "ingest: where a worker's CPU goes"))
    console.print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
