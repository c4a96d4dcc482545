"""Run the Alembic chain against a live async engine, from the app's start-up or the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: every tradeguard process that migrates the same PostgreSQL database takes it.
_MIGRATION_LOCK = 0x7472_6164_6567_7561


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, lambda config: command.downgrade(config, revision))


async def _run(engine: AsyncEngine, operation) -> None:
    def run_with(sync_connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        operation(config)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several API processes start at once and each migrates: one at a time, the others
            # then find the schema at head.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await connection.run_sync(run_with)
