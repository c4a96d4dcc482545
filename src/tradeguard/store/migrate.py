"""Run the Alembic chain against a live async engine, from the app's start-up or the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tradeguard.errors import InvalidInput

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: every tradeguard process that migrates the same PostgreSQL database takes it.
_MIGRATION_LOCK = 0x7472_6164_6567_7561


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def revisions() -> list[str]:
    """Every target a migration accepts, from the empty database to the newest schema."""
    chain = [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    return ["base", *reversed(chain), "head"]


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, lambda config: command.upgrade(config, _keyword(revision)))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, lambda config: command.downgrade(config, _keyword(revision)))


def _keyword(revision: str) -> str:
    # Alembic's `head` and `base` are lower-case; the revisions of this chain are numbers.
    return revision.lower() if revision.lower() in ("head", "base") else revision


async def _run(engine: AsyncEngine, operation) -> None:
    def run_with(sync_connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        try:
            operation(config)
        except CommandError as exc:
            # An unknown revision, or a downgrade "up": the caller's mistake, said with the choices.
            raise InvalidInput(f"{exc} (revisions: {', '.join(revisions())})") from exc

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several API processes start at once and each migrates: one at a time, the others
            # then find the schema at head.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await connection.run_sync(run_with)
