"""What every benchmark needs around the measurement: its database, its Redis, a seed, primed accounts."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench import load
from bench.seed import Seed, SeededAccount, seed_database, unprimed_accounts
from bench.servers import HOST, TRADEGUARD_APP, ServerSpec, serve_command, serve_like_command
from bench.snapshots import SnapshotSigner

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/tradeguard_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
RESULTS = Path("bench/results")
INSTRUMENTED_APP = "bench.instrumented:create_app"
BARE_APP = "bench.bare_app:app"


def _admin_url(database_url: str) -> tuple[str, str]:
    url = make_url(database_url)
    return url.set(database="postgres").render_as_string(hide_password=False), url.database


async def create_database(database_url: str, *, recreate: bool = False) -> bool:
    """Create the PostgreSQL database of the URL if it is missing; True when it was created."""
    if database_url.startswith("sqlite"):
        return False
    import asyncpg

    admin, name = _admin_url(database_url)
    url = make_url(admin)
    connection = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database="postgres"
    )
    try:
        if recreate:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
        return not exists
    finally:
        await connection.close()


async def drop_database(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError, TypeError):
                Path(f"{path}{suffix}").unlink()
        return
    import asyncpg

    admin, name = _admin_url(database_url)
    url = make_url(admin)
    connection = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database="postgres"
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def flush_redis(redis_url: str) -> None:
    """Empty the benchmark's Redis database (cache entries of earlier runs)."""
    if not redis_url:
        return
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def engine_for(seed: Seed) -> AsyncEngine:
    return create_async_engine(seed.database_url)


def server_spec(
    seed: Seed,
    *,
    workers: int,
    app: str = TRADEGUARD_APP,
    factory: bool = True,
    launcher: str = "uvicorn",
    **env: str,
) -> ServerSpec:
    """`launcher`: `uvicorn` (its command line), `tradeguard serve` (tradeguard's app only, as a user
    runs it) or `serve-like` (another app with `tradeguard serve`'s uvicorn options)."""
    if launcher == "tradeguard serve":
        if app != TRADEGUARD_APP:
            raise ValueError(f"tradeguard serve runs {TRADEGUARD_APP}, not {app}")
        command = serve_command(workers)
    elif launcher == "serve-like":
        command = serve_like_command(app, factory=factory, workers=workers)
    elif launcher == "uvicorn":
        command = ()
    else:
        raise ValueError(f"unknown launcher {launcher!r}")
    return ServerSpec(
        app=app,
        factory=factory,
        workers=workers,
        env={**seed.server_env(), **env},
        metrics_dir=workers > 1,
        command=command,
    )


async def seed_pool(seed: Seed, accounts: int, *, stale_after_seconds: int | None = None) -> Seed:
    """`accounts` fresh accounts, one user each, beside the seed's (same database, secrets, positions)."""
    engine = engine_for(seed)
    try:
        return await seed_database(
            engine,
            users=accounts,
            accounts_per_user=1,
            positions=seed.positions_per_account,
            jwt_secret=seed.jwt_secret,
            secret_key=seed.secret_key,
            redis_url=seed.redis_url,
            migrate_first=False,
            stale_after_seconds=stale_after_seconds,
        )
    finally:
        await engine.dispose()


def signers_for(accounts: Sequence[SeededAccount]) -> list[SnapshotSigner]:
    return [SnapshotSigner(account) for account in accounts]


async def ensure_primed(
    seed: Seed, port: int, accounts: Sequence[SeededAccount], *, on_done=None
) -> dict | None:
    """Send the first snapshot to every account that has had none; None when all had one."""
    engine = engine_for(seed)
    try:
        missing = await unprimed_accounts(engine, [account.account_id for account in accounts])
    finally:
        await engine.dispose()
    if not missing:
        return None
    todo = [account for account in accounts if account.account_id in missing]
    return await load.prime(HOST, port, signers_for(todo), concurrency=32, on_done=on_done)


def load_average() -> str:
    """/proc/loadavg as it reads: the machine's load, noted beside every run on a shared machine."""
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().strip()


async def total_syncs(database_url: str) -> int:
    """The sum of account_states.total_syncs: every applied snapshot adds one."""
    from sqlalchemy import func, select

    from tradeguard.store.models import AccountState

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            total = await connection.execute(select(func.coalesce(func.sum(AccountState.total_syncs), 0)))
            return int(total.scalar_one())
    finally:
        await engine.dispose()


async def stale_feeds(database_url: str, account_ids: Sequence[int]) -> int:
    """Of these accounts, those the worker has marked stale (no snapshot for `stale_after_seconds`, 60 by default).

    Their next snapshot also logs the feed's resumption: more work than a steady one. With 10,000
    accounts a phase that reaches each less often than once a minute meets such accounts.
    """
    from sqlalchemy import func, select

    from tradeguard.store.models import AccountState

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            stale = await connection.execute(
                select(func.count())
                .select_from(AccountState)
                .where(AccountState.feed_stale.is_(True), AccountState.account_id.in_(list(account_ids)))
            )
            return int(stale.scalar_one())
    finally:
        await engine.dispose()
