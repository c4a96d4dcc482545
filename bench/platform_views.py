"""What building the operator's platform views costs, in process, against the seeded database.

    .venv/bin/python -m bench platform_views --rounds 5 --calls 20

Each of `GET /api/v1/platform/accounts` (the first page of 50, unfiltered and by broker), the
exposure and a page's drawdown sparklines is built `--calls` times per round straight from the
query modules, as a cache miss builds it (every write to any account drops the platform's cached
views, so under steady ingest an operator's poll is nearly always one). Printed: wall and process
CPU per build, best of `--rounds`, with the number of accounts and open positions they cover.
The database is analysed first, so the planner's statistics are those of a running deployment.

Against a checkout from before a change, run this module from here with that checkout's code
first on the path: `PYTHONPATH=<checkout>/src .venv/bin/python -m bench platform_views`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.arguments import base_parser, console
from bench.harness import RESULTS
from bench.report import write_json
from bench.seed import Seed
from tradeguard.queries.exposure import platform_exposure
from tradeguard.queries.platform import PlatformFilters, platform_accounts_page
from tradeguard.store.models import Account, BrokerPosition

PAGE = 50


async def _timed(build: Callable[[], Awaitable[object]], *, rounds: int, calls: int) -> dict:
    await build()
    best_wall = best_cpu = float("inf")
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            await build()
        best_wall = min(best_wall, (time.perf_counter() - wall) / calls)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / calls)
    return {"wall_ms": round(best_wall * 1000, 2), "cpu_ms": round(best_cpu * 1000, 2)}


async def run(args) -> dict:
    seed = Seed.load(args.seed)
    engine = create_async_engine(seed.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))
        async with AsyncSession(engine) as session:
            accounts = await session.scalar(select(func.count()).select_from(Account))
            positions = await session.scalar(select(func.count()).select_from(BrokerPosition))
            first_page = await platform_accounts_page(session, PlatformFilters(), limit=PAGE, offset=0)
            page_ids = [row.account_id for row in first_page.accounts]
            builds: dict[str, Callable[[], Awaitable[object]]] = {
                "platform accounts, first page": lambda: platform_accounts_page(
                    session, PlatformFilters(), limit=PAGE, offset=0
                ),
                "platform accounts, by broker": lambda: platform_accounts_page(
                    session, PlatformFilters(broker="BenchBroker"), limit=PAGE, offset=0
                ),
                "exposure": lambda: platform_exposure(session),
            }
            try:
                from tradeguard.queries.history import deepest_drawdowns
            except ImportError:  # a checkout from before the sparklines
                deepest_drawdowns = None
            if deepest_drawdowns is not None:
                until = datetime.now(UTC)
                builds["drawdowns of a page, last hour"] = lambda: deepest_drawdowns(
                    session,
                    page_ids,
                    since=until - timedelta(hours=1),
                    until=until,
                    width=timedelta(minutes=2),
                )
            timings = {}
            for name, build in builds.items():
                timings[name] = await _timed(build, rounds=args.rounds, calls=args.calls)
                console.print(
                    f"{name:<34} {timings[name]['wall_ms']:>8} ms wall  {timings[name]['cpu_ms']:>8} ms CPU"
                )
    finally:
        await engine.dispose()
    result = {
        "benchmark": "platform_views",
        "accounts": accounts,
        "open_positions": positions,
        "rounds": args.rounds,
        "calls": args.calls,
        "per_build": timings,
    }
    console.print(
        f"{accounts} accounts, {positions} open positions; best of {args.rounds} rounds of {args.calls}"
    )
    write_json(result, args.output or RESULTS / "platform-views.json")
    return result


def main() -> int:
    parser = base_parser(__doc__, profile=False)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    asyncio.run(run(parser.parse_args()))
    return 0
