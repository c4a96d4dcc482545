"""The Alembic chain builds exactly the schema the models describe, on SQLite and PostgreSQL, and tears it down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, String, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tests.support.builders import NOW
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)
from tradeguard.accounts.service import create_account
from tradeguard.auth.tokens import Principal
from tradeguard.auth.users import create_user
from tradeguard.settings import Settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine
from tradeguard.store.models import Alert, Base, ReconciliationEvent

MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_engine(request, tmp_path) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database that nothing else uses."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        engine = create_engine(Settings(database_url=url, data_dir=tmp_path))
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    async with fresh_postgres_engine(tmp_path) as engine:
        yield engine


@contextlib.asynccontextmanager
async def fresh_postgres_engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = await create_postgres_database()
    engine = create_engine(Settings(database_url=postgres_url(name), data_dir=tmp_path))
    try:
        yield engine
    finally:
        await engine.dispose()
        await drop_postgres_database(name)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def schema_differences(engine: AsyncEngine, metadata: MetaData = Base.metadata) -> list:
    """What autogenerate would put in a new migration: empty when the migrations and the models agree."""

    def compare(sync_connection) -> list:
        context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


def head_revision() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


async def test_upgrade_to_head_creates_every_model_table(fresh_engine):
    assert await table_names(fresh_engine) == set()

    await migrate.upgrade(fresh_engine)

    assert await table_names(fresh_engine) == MODEL_TABLES | {"alembic_version"}
    assert await current_revision(fresh_engine) == head_revision()


async def test_migrated_schema_matches_the_models(fresh_engine):
    await migrate.upgrade(fresh_engine)

    assert await schema_differences(fresh_engine) == []


async def test_the_comparison_catches_a_model_change_without_a_migration(fresh_engine):
    """The check above is only worth having if drift makes it fail: a new column, a wider type, a nullability."""
    await migrate.upgrade(fresh_engine)
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["accounts"].append_column(Column("leverage", Integer, nullable=True))
    changed.tables["users"].c.role.type = String(32)
    changed.tables["users"].c.role.nullable = True

    differences = await schema_differences(fresh_engine, changed)

    flat = [diff for entry in differences for diff in (entry if isinstance(entry, list) else [entry])]
    assert sorted(diff[0] for diff in flat) == ["add_column", "modify_nullable", "modify_type"]


async def test_upgrade_twice_is_a_no_op(fresh_engine):
    await migrate.upgrade(fresh_engine)
    await migrate.upgrade(fresh_engine)

    assert await table_names(fresh_engine) == MODEL_TABLES | {"alembic_version"}
    assert await schema_differences(fresh_engine) == []


async def test_processes_starting_together_migrate_postgresql_one_at_a_time(tmp_path):
    async with fresh_postgres_engine(tmp_path) as engine:
        await _migrate_in_four_processes_at_once(engine, tmp_path)
        assert await current_revision(engine) == head_revision()
        assert await schema_differences(engine) == []


async def _migrate_in_four_processes_at_once(engine: AsyncEngine, tmp_path) -> None:
    environment = {
        **os.environ,
        "TRADEGUARD_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "TRADEGUARD_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-c", "from tradeguard.cli import app; app()", "migrate"]
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        for _ in range(4)
    ]
    outputs = [(await process.communicate())[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, outputs


async def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(fresh_engine):
    await migrate.upgrade(fresh_engine)

    await migrate.downgrade(fresh_engine, "base")

    assert await table_names(fresh_engine) == {"alembic_version"}
    assert await current_revision(fresh_engine) is None

    await migrate.upgrade(fresh_engine)

    assert await table_names(fresh_engine) == MODEL_TABLES | {"alembic_version"}
    assert await current_revision(fresh_engine) == head_revision()
    assert await schema_differences(fresh_engine) == []


async def test_alert_entries_written_before_the_link_get_their_alerts_id(fresh_engine):
    await migrate.upgrade(fresh_engine)
    sessions = async_sessionmaker(fresh_engine, expire_on_commit=False)
    async with sessions() as session:
        user = await create_user(session, email="old@example.com", password="x" * 12, role="user", now=NOW)
        account = await create_account(
            session, Principal(user.id, "user"), name="Old", broker=None, login=None, currency="USD", now=NOW
        )
        alerts = [
            Alert(account_id=account.id, created_at=NOW, kind=kind, level="warning", message=message)
            for kind, message in (("drawdown", "drawdown 16%"), ("market", "GBPUSD market warning"))
        ]
        session.add_all(alerts)
        session.add_all(
            ReconciliationEvent(
                account_id=account.id, created_at=NOW, event_type=event_type, reason=reason, message=message
            )
            for event_type, reason, message in (
                ("alert", "market", "GBPUSD market warning"),
                ("guard_level", "drawdown", "drawdown 16%"),
                ("alert", "drawdown", "drawdown 16%"),
            )
        )
        await session.commit()
    before_the_link = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(
        "0003_alert_identity"
    )
    await migrate.downgrade(fresh_engine, before_the_link.down_revision)

    await migrate.upgrade(fresh_engine)

    async with sessions() as session:
        linked = await session.execute(
            select(ReconciliationEvent.event_type, ReconciliationEvent.alert_id).order_by(
                ReconciliationEvent.id
            )
        )
    assert [tuple(row) for row in linked] == [
        ("alert", alerts[1].id),
        ("guard_level", None),
        ("alert", alerts[0].id),
    ]


def test_the_models_describe_the_tables_the_service_needs():
    """Guards the comparisons above against passing vacuously on an empty or partial metadata."""
    core = {
        "users",
        "accounts",
        "account_states",
        "devices",
        "device_nonces",
        "instruments",
        "expected_trades",
        "broker_positions",
        "account_snapshots",
        "reconciliation_log",
        "alerts",
        "close_commands",
    }
    assert core <= MODEL_TABLES
