"""The Alembic chain builds exactly the schema the models describe, on SQLite and PostgreSQL, and tears it down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, inspect, select, text
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
from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.accounts.service import create_account, initial_state
from tradeguard.auth.tokens import Principal
from tradeguard.auth.users import create_user
from tradeguard.settings import Settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine
from tradeguard.store.models import Account, AccountState, Alert, Base, ReconciliationEvent
from tradeguard.store.types import ExactDecimal, UTCDateTime

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


BEFORE_PARTITIONS = "0005_unique_broker_login"
# As the tables stood at 0005, written without the models of today.
OLD_SNAPSHOT_ROW = text(
    "INSERT INTO account_snapshots (account_id, taken_at, received_at, balance, equity, margin, peak_equity,"
    " drawdown_pct) VALUES (:account_id, :taken_at, :taken_at, '10000', :equity, NULL, '10000', '0')"
).bindparams(bindparam("taken_at", type_=UTCDateTime()), bindparam("equity", type_=ExactDecimal()))
HISTORY = [
    (NOW - timedelta(days=3), Decimal("9000")),
    (NOW - timedelta(days=3) + timedelta(seconds=5), Decimal("9100")),
    (NOW, Decimal("9500")),
    (datetime(2099, 1, 1, tzinfo=UTC), Decimal("9900")),
]


async def account_at(engine: AsyncEngine) -> int:
    """An account in a schema of an earlier revision: only the columns every revision has are written."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        user = await create_user(session, email="old@example.com", password="x" * 12, role="user", now=NOW)
        values = {"owner_id": user.id, "name": "Old", "currency": "USD", "created_at": NOW}
        created = await session.execute(
            insert(Account.__table__)
            .values(**values, **GuardConfig().model_dump())
            .returning(Account.__table__.c.id)
        )
        account_id = created.scalar_one()
        await session.commit()
    return account_id


async def history_rows(engine: AsyncEngine, columns: str = "account_id, taken_at, equity") -> list[tuple]:
    async with engine.connect() as connection:
        rows = await connection.execute(text(f"SELECT {columns} FROM account_snapshots ORDER BY taken_at"))
        return [tuple(row) for row in rows]


async def test_the_equity_history_moves_into_partitions_and_back_without_losing_a_row(fresh_engine):
    await migrate.upgrade(fresh_engine, BEFORE_PARTITIONS)
    account_id = await account_at(fresh_engine)
    async with fresh_engine.begin() as connection:
        for taken_at, equity in HISTORY:
            await connection.execute(
                OLD_SNAPSHOT_ROW, {"account_id": account_id, "taken_at": taken_at, "equity": equity}
            )
    before = await history_rows(fresh_engine)

    await migrate.upgrade(fresh_engine)

    assert await history_rows(fresh_engine) == before
    assert len(before) == len(HISTORY)
    if fresh_engine.dialect.name == "postgresql":
        async with fresh_engine.connect() as connection:
            partitions = await connection.execute(
                text(
                    "SELECT child.relname, count(*) OVER () FROM pg_inherits"
                    " JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid"
                    " JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent"
                    " WHERE parent.relname = 'account_snapshots' ORDER BY child.relname"
                )
            )
            default_rows = await connection.scalar(
                text("SELECT count(*) FROM history_partitions.account_snapshots_default")
            )
        assert [name for name, _ in partitions] == [
            "account_snapshots_default",
            "account_snapshots_p20261122",
            "account_snapshots_p20261125",
            "account_snapshots_p20990101",
        ]
        assert default_rows == 0

    await migrate.downgrade(fresh_engine, BEFORE_PARTITIONS)

    assert await history_rows(fresh_engine, "id, account_id, taken_at, equity") == [
        (index + 1, *row) for index, row in enumerate(before)
    ]
    await migrate.upgrade(fresh_engine)
    assert await history_rows(fresh_engine) == before
    assert await schema_differences(fresh_engine) == []


async def test_two_snapshots_of_an_account_at_one_moment_stop_the_move_into_partitions(fresh_engine):
    await migrate.upgrade(fresh_engine, BEFORE_PARTITIONS)
    account_id = await account_at(fresh_engine)
    async with fresh_engine.begin() as connection:
        for equity in (Decimal("9000"), Decimal("9100")):
            await connection.execute(
                OLD_SNAPSHOT_ROW, {"account_id": account_id, "taken_at": NOW, "equity": equity}
            )

    with pytest.raises(RuntimeError, match=f"account {account_id} at .* \\(2 rows\\)"):
        await migrate.upgrade(fresh_engine)

    assert await current_revision(fresh_engine) == BEFORE_PARTITIONS
    assert len(await history_rows(fresh_engine)) == 2


BEFORE_RULES = "0006_history_partitions"


async def test_the_daily_anchor_becomes_the_daily_loss_rules_period_start_and_back(fresh_engine):
    await migrate.upgrade(fresh_engine, BEFORE_RULES)
    account_id = await account_at(fresh_engine)
    day_start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    old_states = MetaData()
    states = Table(
        "account_states",
        old_states,
        Column("account_id", Integer),
        Column("day_anchor_value", ExactDecimal()),
        Column("day_anchor_start", UTCDateTime()),
    )
    fresh = initial_state(account_id)
    row = {
        column.name: getattr(fresh, column.name)
        for column in AccountState.__table__.c
        if column.name != "rule_states"
    }
    async with fresh_engine.begin() as connection:
        await connection.execute(
            text(
                f"INSERT INTO account_states ({', '.join(row)}, day_anchor_value, day_anchor_start) "
                f"VALUES ({', '.join(':' + name for name in row)}, :value, :start)"
            ).bindparams(bindparam("value", type_=ExactDecimal()), bindparam("start", type_=UTCDateTime())),
            {**row, "value": Decimal("10250.50"), "start": day_start},
        )

    await migrate.upgrade(fresh_engine)

    async with fresh_engine.connect() as connection:
        kept = await connection.scalar(text("SELECT rule_states FROM account_states"))
    assert json.loads(kept) == {
        "initial_balance": None,
        "rules": {
            "daily_loss": {
                "period_start": "2026-11-30T23:00:00+00:00",
                "start_balance": "10250.5",
                "start_equity": "10250.5",
            }
        },
    }

    await migrate.downgrade(fresh_engine, BEFORE_RULES)

    async with fresh_engine.connect() as connection:
        anchor = (
            await connection.execute(select(states.c.day_anchor_value, states.c.day_anchor_start))
        ).one()
    assert tuple(anchor) == (Decimal("10250.50"), day_start)
