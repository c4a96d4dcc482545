"""A month of equity history on PostgreSQL: table sizes, the ingest's insert, and a month's chart.

On a database of its own, for a scaled population (100 accounts by default): 28 days of minute
aggregates and two days of raw points at a 5 s cadence are written set-based (generate_series),
straight into the tables; then the worker's maintenance runs at the end of that month, rolling up
the older raw day into minutes and dropping its partition. It reports:

- each table's size (every partition's pg_total_relation_size, added up) and bytes per row, before
  and after the maintenance, and an extrapolation of a month to `--extrapolate-accounts`;
- the ingest's insert (`store_state_and_equity`, the statement every applied snapshot runs, one
  transaction per snapshot over `--writers` connections) into the partitioned table and into an
  unpartitioned copy of it, in alternating rounds of the same run;
- the latency of a month's chart (`GET /accounts/{id}/equity?since=<30 days ago>&max_points=500`)
  through `tradeguard serve`, each read with its own `until` (a microsecond apart) so that none is
  a cache hit, p50 and p99; and the same for the last day's chart, answered from raw points.

    python -m bench history_month [--accounts 100] [--days 30] [--reads 200]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench import environment, report
from bench.servers import ServerSpec, running
from bench.stats import latency_summary
from tradeguard.accounts.service import create_account
from tradeguard.auth.tokens import Principal, issue_token
from tradeguard.auth.users import create_user
from tradeguard.domain.history import RAW_PARTITION, floor_to
from tradeguard.settings import Settings
from tradeguard.store import migrate
from tradeguard.store.accounts_state import store_state_and_equity
from tradeguard.store.db import create_engine, session_factory
from tradeguard.store.models import AccountState
from tradeguard.store.retention import HistoryPolicy, maintain_history

RESULTS = Path(__file__).parent / "results" / "history_month.json"
CADENCE = timedelta(seconds=5)
DAY = timedelta(days=1)
TABLES = ("account_snapshots", "equity_minutes", "reconciliation_log")

# A random walk is not needed for sizes or for the read's cost; a wave and a little noise per
# account give the chart something to draw and every bucket different extremes.
_MINUTES = """
INSERT INTO equity_minutes (account_id, minute, snapshots, first_taken_at, last_taken_at,
    equity_first, equity_last, equity_min, equity_max, balance_first, balance_last, balance_min,
    balance_max, peak_equity, drawdown_pct, drawdown_max_pct)
SELECT a.id, m.minute, 12, m.minute, m.minute + INTERVAL '55 seconds',
       w.equity, w.equity + 3, w.equity - 20, w.equity + 20, 10000, 10000, 10000, 10000,
       11000, (11000 - w.equity - 3) / 110, (11000 - w.equity + 20) / 110
FROM unnest(CAST(:accounts AS BIGINT[])) AS a(id)
CROSS JOIN generate_series(CAST(:since AS TIMESTAMPTZ), CAST(:until AS TIMESTAMPTZ) - INTERVAL '1 minute',
                           INTERVAL '1 minute') AS m(minute)
CROSS JOIN LATERAL (
    SELECT round(CAST(10000 + 500 * sin(extract(epoch FROM m.minute) / 86400.0 + a.id)
                 + 50 * random() AS NUMERIC), 2) AS equity
) AS w
"""
_RAW = """
INSERT INTO account_snapshots (account_id, taken_at, received_at, balance, equity, margin, peak_equity,
    drawdown_pct)
SELECT a.id, t.taken_at, t.taken_at, 10000, w.equity, NULL, 11000, (11000 - w.equity) / 110
FROM unnest(CAST(:accounts AS BIGINT[])) AS a(id)
CROSS JOIN generate_series(CAST(:since AS TIMESTAMPTZ), CAST(:until AS TIMESTAMPTZ) - INTERVAL '5 seconds',
                           INTERVAL '5 seconds') AS t(taken_at)
CROSS JOIN LATERAL (
    SELECT round(CAST(10000 + 500 * sin(extract(epoch FROM t.taken_at) / 86400.0 + a.id)
                 + 50 * random() AS NUMERIC), 2) AS equity
) AS w
"""
# The ingest's statement, pointed at an unpartitioned table by the connection's search_path.
_PLAIN_SCHEMA = "bench_unpartitioned"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench history_month", description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--days", type=int, default=30, help="the month's length")
    parser.add_argument("--reads", type=int, default=200, help="reads of each chart")
    parser.add_argument("--ingest-rounds", type=int, default=4, help="rounds per table, alternating")
    parser.add_argument("--ingest-snapshots", type=int, default=2000, help="snapshots per round")
    parser.add_argument("--writers", type=int, default=8, help="connections the ingest's inserts share")
    parser.add_argument("--extrapolate-accounts", type=int, default=10_000)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


async def table_sizes(engine: AsyncEngine) -> dict[str, dict]:
    """Every table's partitions added up (a partitioned table's own size is nothing), with its rows."""
    sizes = {}
    async with engine.connect() as connection:
        for table in TABLES:
            total, partitions = (
                await connection.execute(
                    text(
                        "SELECT sum(pg_total_relation_size(relid)), count(*) FILTER (WHERE isleaf) "
                        "FROM pg_partition_tree(CAST(:table AS regclass))"
                    ),
                    {"table": table},
                )
            ).one()
            if total is None:
                # Not partitioned: a table of its own.
                total = await connection.scalar(
                    text("SELECT pg_total_relation_size(CAST(:table AS regclass))"), {"table": table}
                )
            rows = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
            sizes[table] = {
                "bytes": int(total),
                "rows": rows,
                "bytes_per_row": round(int(total) / rows, 1) if rows else None,
                "partitions": partitions,
            }
    return sizes


async def seed_accounts(engine: AsyncEngine, count: int) -> tuple[int, list[int]]:
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        user = await create_user(
            session,
            email=f"history-{uuid.uuid4().hex[:8]}@bench.test",
            password="x" * 16,
            role="user",
            now=now,
        )
        principal = Principal(user.id, "user")
        ids = []
        for index in range(count):
            account = await create_account(
                session, principal, name=f"Follower {index}", broker=None, login=None, currency="USD", now=now
            )
            ids.append(account.id)
        await session.commit()
    return user.id, ids


async def write_month(engine: AsyncEngine, accounts: list[int], *, end: datetime, days: int) -> dict:
    """Minute aggregates up to two days before `end`, raw points for the two days after."""
    month_start, raw_start = end - days * DAY, end - 2 * DAY
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            text(_MINUTES), {"accounts": accounts, "since": month_start, "until": raw_start}
        )
    minutes_seconds = time.perf_counter() - started
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(text(_RAW), {"accounts": accounts, "since": raw_start, "until": end})
    raw_seconds = time.perf_counter() - started
    await analyze(engine)
    return {"minutes_write_seconds": round(minutes_seconds, 1), "raw_write_seconds": round(raw_seconds, 1)}


async def analyze(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in ("account_snapshots", "equity_minutes"):
            await connection.execute(text(f"ANALYZE {table}"))


async def make_unpartitioned_copy(engine: AsyncEngine) -> None:
    """The history's table as it was before partitioning, key and foreign key alike, in a schema that
    a connection's search_path puts before the real one."""
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA {_PLAIN_SCHEMA}"))
        await connection.execute(
            text(
                f"CREATE TABLE {_PLAIN_SCHEMA}.account_snapshots (LIKE public.account_snapshots "
                "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
            )
        )
        await connection.execute(
            text(
                f"ALTER TABLE {_PLAIN_SCHEMA}.account_snapshots ADD FOREIGN KEY (account_id) "
                "REFERENCES public.accounts (id)"
            )
        )


async def ingest_round(
    engine: AsyncEngine, accounts: list[int], *, start: datetime, snapshots: int, writers: int
) -> float:
    """`snapshots` applied snapshots' state and equity writes, one transaction each; their rate."""
    sessions = session_factory(engine)
    async with sessions() as session:
        states = list(
            (await session.scalars(select(AccountState).where(AccountState.account_id.in_(accounts)))).all()
        )
        for state in states:
            session.expunge(state)

    async def writer(mine: list[AccountState], count: int) -> None:
        for index in range(count):
            state = mine[index % len(mine)]
            step = index // len(mine) + 1
            taken_at = start + step * CADENCE
            state.last_snapshot_taken_at = taken_at
            state.last_sync_at = taken_at
            state.balance = 10000
            state.equity = 10000 + step % 97
            state.peak_equity = 11000
            state.drawdown_pct = 5
            state.total_syncs += 1
            async with sessions() as session:
                await store_state_and_equity(session, state)
                await session.commit()

    # Each writer its own accounts, as one account's snapshots are applied one at a time.
    writers = min(writers, len(states))
    shares = [states[index::writers] for index in range(writers)]
    started = time.perf_counter()
    await asyncio.gather(*(writer(share, snapshots // writers) for share in shares))
    return snapshots // writers * writers / (time.perf_counter() - started)


async def measure_ingest(
    url: str, accounts: list[int], *, end: datetime, rounds: int, snapshots: int, writers: int
) -> dict:
    partitioned = create_async_engine(url, pool_size=writers)
    unpartitioned = create_async_engine(
        url, pool_size=writers, connect_args={"server_settings": {"search_path": f"{_PLAIN_SCHEMA},public"}}
    )
    rates: dict[str, list[float]] = {"partitioned": [], "unpartitioned": []}
    try:
        for index in range(rounds):
            # Each round its own minutes of the partitioned table's current day.
            start = end + timedelta(minutes=10) + index * timedelta(hours=1)
            for name, engine in (("partitioned", partitioned), ("unpartitioned", unpartitioned)):
                rate = await ingest_round(engine, accounts, start=start, snapshots=snapshots, writers=writers)
                rates[name].append(round(rate, 1))
    finally:
        await partitioned.dispose()
        await unpartitioned.dispose()
    median = {name: sorted(values)[len(values) // 2] for name, values in rates.items()}
    return {
        "rounds": rates,
        "median_per_second": median,
        "ratio_partitioned_to_unpartitioned": round(median["partitioned"] / median["unpartitioned"], 3),
        "snapshots_per_round": snapshots,
        "writers": writers,
    }


async def measure_reads(
    url: str, *, secret: str, user_id: int, accounts: list[int], end: datetime, days: int, reads: int
) -> dict:
    token = issue_token(
        Principal(user_id, "user"), secret=secret, now=datetime.now(UTC), lifetime=timedelta(hours=2)
    )
    data_dir = Path(tempfile.mkdtemp(prefix="tg-history-"))
    env = {
        "TRADEGUARD_DATABASE_URL": url,
        "TRADEGUARD_JWT_SECRET": secret,
        "TRADEGUARD_DATA_DIR": str(data_dir),
        # The maintenance runs here with the month's own clock, not the server's.
        "TRADEGUARD_RUN_WORKER_IN_API": "false",
    }
    charts = {
        "month_max_points_500": {"since": end - days * DAY, "max_points": 500},
        "last_day_max_points_500": {"since": end - DAY + timedelta(hours=1), "max_points": 500},
    }
    results = {}
    async with (
        running(ServerSpec(app="tradeguard.app:create_app", env=env)) as server,
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        for name, chart in charts.items():
            samples, answer = [], None
            for index in range(reads):
                account = accounts[index % len(accounts)]
                params = {
                    "since": chart["since"].isoformat(),
                    "until": (end + timedelta(microseconds=index + 1)).isoformat(),
                    "max_points": chart["max_points"],
                }
                started = time.perf_counter()
                response = await client.get(f"/api/v1/accounts/{account}/equity", params=params)
                samples.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
                answer = response.json()
            results[name] = {
                **latency_summary(samples),
                "resolution": answer["resolution"],
                "bucket_seconds": answer["bucket_seconds"],
                "points": len(answer["points"]),
                "snapshots": sum(point["snapshots"] for point in answer["points"]),
            }
    return results


def extrapolate(sizes: dict, *, accounts: int, target: int, days: int, raw_days: float) -> dict:
    """A month at `target` accounts from the measured bytes per row: labelled as extrapolated."""
    per_day_raw = target * DAY / CADENCE
    rows = {
        "account_snapshots": per_day_raw * raw_days,
        "equity_minutes": target * 1440 * days,
    }
    return {
        "extrapolated": True,
        "accounts": target,
        "from_accounts": accounts,
        "raw_days_held": raw_days,
        "tables": {
            table: {
                "rows": int(count),
                "gib": round(count * sizes[table]["bytes_per_row"] / 2**30, 1),
            }
            for table, count in rows.items()
        },
    }


async def run(args: argparse.Namespace) -> dict:
    name = f"tg_bench_history_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = args.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    secret = secrets.token_urlsafe(32)
    engine = create_engine(Settings(database_url=url))
    try:
        await migrate.upgrade(engine)
        user_id, accounts = await seed_accounts(engine, args.accounts)
        # The month ends at the start of today: the maintenance at that moment rolls up the day
        # before yesterday and keeps yesterday raw.
        end = floor_to(datetime.now(UTC), RAW_PARTITION)
        policy = HistoryPolicy(raw_retention=DAY, minute_retention=timedelta(days=92), partitions_ahead=2)
        async with session_factory(engine)() as session:
            await maintain_history(session, now=end - 2 * DAY, policy=policy)
            await session.commit()
        written = await write_month(engine, accounts, end=end, days=args.days)
        before = await table_sizes(engine)
        started = time.perf_counter()
        async with session_factory(engine)() as session:
            maintenance = await maintain_history(session, now=end, policy=policy)
            await session.commit()
        maintenance_seconds = time.perf_counter() - started
        await analyze(engine)
        after = await table_sizes(engine)
        reads = await measure_reads(
            url, secret=secret, user_id=user_id, accounts=accounts, end=end, days=args.days, reads=args.reads
        )
        await make_unpartitioned_copy(engine)
        ingest = await measure_ingest(
            url,
            accounts,
            end=end,
            rounds=args.ingest_rounds,
            snapshots=args.ingest_snapshots,
            writers=args.writers,
        )
        return {
            "benchmark": "history_month",
            "environment": await environment.describe(database_url=url, redis_url=""),
            "accounts": args.accounts,
            "days": args.days,
            "month_end": end.isoformat(),
            "written": written,
            "sizes_before_maintenance": before,
            "maintenance": {
                "seconds": round(maintenance_seconds, 1),
                "dropped": maintenance.dropped,
                "created": maintenance.created,
                "minutes_written": maintenance.minutes_written,
            },
            "sizes_after_maintenance": after,
            "extrapolation": extrapolate(
                after, accounts=args.accounts, target=args.extrapolate_accounts, days=args.days, raw_days=2
            ),
            "reads": reads,
            "ingest": ingest,
        }
    finally:
        await engine.dispose()
        if not args.keep_database:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> int:
    args = parse_args()
    result = asyncio.run(run(args))
    path = report.write_json(result, args.output)
    for key in (
        "sizes_before_maintenance",
        "maintenance",
        "sizes_after_maintenance",
        "extrapolation",
        "reads",
        "ingest",
    ):
        print(key, result[key])
    print(f"written to {path}")
    return 0
