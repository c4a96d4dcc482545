"""Seed the benchmark database: users, accounts, bridge devices, expected trades, tokens.

    .venv/bin/python bench/seed.py --users 5000 --accounts-per-user 2      # 10,000 accounts
    .venv/bin/python bench/seed.py --drop                                  # drop the database

Writes bench/results/seed.json (tokens and device secrets for the load generators; git-ignored).
The database (default tradeguard_bench on 127.0.0.1) is created and migrated when missing;
--recreate starts from an empty one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from tradeguard.bench.harness import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    RESULTS,
    create_database,
    drop_database,
    flush_redis,
)
from tradeguard.bench.seed import Seed, new_secrets, seed_database


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--accounts-per-user", type=int, default=2)
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--output", type=Path, default=RESULTS / "seed.json")
    parser.add_argument("--recreate", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--append", action="store_true", help="add to an existing seed file")
    parser.add_argument("--drop", action="store_true", help="drop the database and flush Redis, then exit")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    if args.drop:
        await drop_database(args.database_url)
        await flush_redis(args.redis_url)
        args.output.unlink(missing_ok=True)
        print(f"dropped {args.database_url}, flushed {args.redis_url}")
        return
    await create_database(args.database_url, recreate=args.recreate)
    previous = Seed.load(args.output) if args.append and args.output.exists() else None
    jwt_secret, secret_key = (
        (previous.jwt_secret, previous.secret_key) if previous is not None else new_secrets()
    )
    engine = create_async_engine(args.database_url)
    started = time.perf_counter()
    try:
        seed = await seed_database(
            engine,
            users=args.users,
            accounts_per_user=args.accounts_per_user,
            positions=args.positions,
            jwt_secret=jwt_secret,
            secret_key=secret_key,
            redis_url=args.redis_url,
            on_progress=lambda step: print(f"  {step} done after {time.perf_counter() - started:.1f} s"),
        )
    finally:
        await engine.dispose()
    if previous is not None:
        previous.extend(seed)
        seed = previous
    seed.save(args.output)
    print(
        f"seeded {args.users} users, {args.users * args.accounts_per_user} accounts "
        f"in {time.perf_counter() - started:.1f} s; {len(seed.accounts)} accounts in {args.output}"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
