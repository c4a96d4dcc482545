"""The async engine and sessions for PostgreSQL (asyncpg) or the embedded SQLite file (aiosqlite)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from tradeguard.settings import Settings


def create_engine(settings: Settings, database_url: str | None = None) -> AsyncEngine:
    url = make_url(database_url or settings.resolved_database_url())
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No ping per checkout (a round trip on every request); connections are recycled instead,
        # and one broken by a database restart fails one request, not every one after it.
        pool_recycle=1800,
    )


async def open_pool(engine: AsyncEngine, size: int) -> None:
    """Open the pool's connections now, so the first requests under load do not each pay a connect."""
    if engine.dialect.name == "sqlite":
        return
    opened = []
    try:
        for _ in range(size):
            opened.append(await engine.connect())
    finally:
        for connection in opened:
            await connection.close()


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets readers proceed while the ingest step writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_path(url: str | URL) -> Path | None:
    """The absolute path of an SQLite database's file; None for a server's or an in-memory one."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def describe_database(url: str | URL) -> str:
    """The database as an operator would look for it: the SQLite file's absolute path (and whether
    it is about to be created), or the server's URL without the password."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return url.render_as_string(hide_password=True)
    path = sqlite_path(url)
    if path is None:
        return "sqlite in memory"
    return f"sqlite {path}" if path.exists() else f"sqlite {path} (new)"


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
