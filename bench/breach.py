"""Breach to close command: latency from a critical snapshot's arrival to its close commands existing.

    .venv/bin/python bench/seed.py --users 5000 --accounts-per-user 2    # once
    .venv/bin/python bench/breach.py --pool 500 --rate 50
    .venv/bin/python bench/breach.py --pool 500 --rate 50 --background-rate 100

Writes bench/results/breach.json. See tradeguard/bench/breach.py for what each measure means.
"""

from __future__ import annotations

import asyncio
import sys

from _common import base_parser, console, progress_printer, server_env

from tradeguard.bench.breach import run_breach
from tradeguard.bench.harness import RESULTS
from tradeguard.bench.report import breach_table, environment_line, write_json
from tradeguard.bench.seed import Seed


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument(
        "--pool", type=int, default=500, help="accounts that breach, one critical snapshot each"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="critical snapshots per second (open loop)")
    parser.add_argument(
        "--background-rate", type=float, default=0.0, help="normal snapshots per second meanwhile"
    )
    parser.add_argument("--background-accounts", type=int, default=2000)
    args = parser.parse_args()
    seed = Seed.load(args.seed)
    result = asyncio.run(
        run_breach(
            seed,
            pool=args.pool,
            rate=args.rate,
            workers=args.workers,
            background_rate=args.background_rate,
            background_accounts=args.background_accounts,
            server_env=server_env(args.env),
            log_dir=RESULTS / "logs",
            on_phase=progress_printer("breach"),
        )
    )
    path = write_json(result, args.output or RESULTS / "breach.json")
    console.print(environment_line(result["environment"]))
    console.print(breach_table(result))
    steady = result["steady_snapshot"]
    console.print(
        f"SQL statements per request: breach {result['breach']['sql_statements_per_request']}, "
        f"steady snapshot {steady['sql_statements_per_request']}; "
        f"commands per answer {result['breach']['commands_per_answer']}"
    )
    console.print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
