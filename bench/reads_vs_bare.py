"""Cached reads (wrk, 100 connections) against a bare ASGI app on the same server settings, in one run.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2    # once
    .venv/bin/python -m bench reads_vs_bare --duration 15 --profile

Writes bench/results/reads.json.
"""

from __future__ import annotations

import asyncio

from bench.arguments import base_parser, console, progress_printer, server_env
from bench.harness import RESULTS
from bench.reads import run_reads
from bench.report import environment_line, profile_table, reads_table, write_json
from bench.seed import Seed


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--users", type=int, default=100, help="seeded users whose tokens rotate")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    seed = Seed.load(args.seed)
    result = asyncio.run(
        run_reads(
            seed,
            workers=args.workers,
            users=args.users,
            connections=args.connections,
            threads=args.threads,
            duration=args.duration,
            server_env=server_env(args.env),
            profile_dir=RESULTS / "profiles" if args.profile else None,
            log_dir=RESULTS / "logs",
            on_phase=progress_printer("reads"),
        )
    )
    path = write_json(result, args.output or RESULTS / "reads.json")
    console.print(environment_line(result["environment"]))
    console.print(reads_table(result))
    if "profile" in result:
        console.print(profile_table(result["profile"], "cached read: where a worker's CPU goes"))
    console.print(f"written {path}")
    return 0
