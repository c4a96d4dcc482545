"""The `tradeguard` command: migrating a database and creating users from the shell."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from tradeguard.auth.users import authenticate
from tradeguard.bench.quick import seed_accounts
from tradeguard.bench.seed import new_secrets
from tradeguard.cli import app
from tradeguard.settings import Settings, get_settings
from tradeguard.store.db import create_engine, session_factory
from tradeguard.store.models import Base, User

PASSWORD = "longpassword"


@pytest.fixture
def database(tmp_path, monkeypatch) -> Path:
    """A SQLite file the CLI is pointed at through the environment, as an operator would."""
    path = tmp_path / "cli.db"
    for name in ("TRADEGUARD_REDIS_URL", "TRADEGUARD_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADEGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRADEGUARD_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def invoke(*args: str, input: str | None = None):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), input=input)
    finally:
        get_settings.cache_clear()


def said(result) -> str:
    """What the command printed, with rich's boxes and line wrapping taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def create_user_cli(email: str, *, role: str = "admin", password: str = PASSWORD):
    return invoke("users", "create", email, "--role", role, "--password-stdin", input=password + "\n")


def run_on(database: Path, work):
    """Run `work(session)` against the CLI's database, outside the CLI."""

    async def run():
        engine = create_engine(
            Settings(database_url=f"sqlite+aiosqlite:///{database}", data_dir=database.parent)
        )
        try:
            async with session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table_names(database: Path) -> set[str]:
    async def names(session):
        connection = await session.connection()
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))

    return run_on(database, names)


def user_count(database: Path) -> int:
    async def count(session):
        return await session.scalar(select(func.count()).select_from(User))

    return run_on(database, count)


def test_migrate_creates_the_schema(database):
    result = invoke("migrate")

    assert result.exit_code == 0, result.output
    assert set(Base.metadata.tables) | {"alembic_version"} == table_names(database)


def test_migrate_down_to_base_drops_the_schema(database):
    assert invoke("migrate").exit_code == 0

    result = invoke("migrate", "base", "--down")

    assert result.exit_code == 0, result.output
    assert table_names(database) == {"alembic_version"}


def test_users_create_reads_the_password_from_stdin_and_stores_a_working_login(database):
    result = create_user_cli("A@B.co")

    assert result.exit_code == 0, result.output
    assert "created user" in said(result)
    assert "(admin)" in said(result)

    async def sign_in(session):
        return await authenticate(session, email="a@b.co", password=PASSWORD)

    user = run_on(database, sign_in)
    assert user is not None
    assert (user.email, user.role, user.is_active) == ("a@b.co", "admin", True)
    assert user.password_hash != PASSWORD

    async def sign_in_wrongly(session):
        return await authenticate(session, email="a@b.co", password=PASSWORD + "x")

    assert run_on(database, sign_in_wrongly) is None


def test_users_create_with_a_duplicate_email_exits_1_with_a_message(database):
    assert create_user_cli("a@b.co").exit_code == 0

    result = create_user_cli("A@b.co", role="user", password="anotherpassword")

    assert result.exit_code == 1, result.output
    assert "already exists" in said(result)
    assert user_count(database) == 1


def test_users_create_rejects_an_unknown_role(database):
    result = create_user_cli("a@b.co", role="root")

    assert result.exit_code == 2, result.output
    assert "role must be one of owner, admin, user" in said(result)
    assert not database.exists() or user_count(database) == 0


def test_users_create_rejects_a_short_password_with_exit_1(database):
    result = create_user_cli("a@b.co", password="short")

    assert result.exit_code == 1, result.output
    assert "at least 8 characters" in said(result)
    assert user_count(database) == 0


def test_users_create_rejects_something_that_is_not_an_email(database):
    result = create_user_cli("not-an-email")

    assert result.exit_code == 1, result.output
    assert "not an email address" in said(result)
    assert user_count(database) == 0


def test_instruments_set_stores_an_override_that_list_shows(database):
    stored = invoke("instruments", "set", "xauusd", "--pip-size", "0.1", "--contract-size", "100")
    listed = invoke("instruments", "list")

    assert stored.exit_code == 0, stored.output
    assert "XAUUSD 0.1 100" in said(listed)


def test_instruments_set_refuses_a_non_positive_size(database):
    refused = invoke("instruments", "set", "US30", "--pip-size", "0", "--contract-size", "1")

    assert refused.exit_code == 2
    assert "positive" in said(refused)


def test_serve_with_several_workers_requires_postgresql_and_redis(database):
    refused = invoke("serve", "--workers", "2")

    assert refused.exit_code == 2
    assert "PostgreSQL" in said(refused)


@pytest.mark.parametrize("accounts", [1, 4, 5])
def test_bench_seeds_exactly_the_number_of_accounts_asked_for(tmp_path, accounts):
    async def seed():
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}")
        jwt_secret, secret_key = new_secrets()
        try:
            return await seed_accounts(
                engine, accounts, positions=1, jwt_secret=jwt_secret, secret_key=secret_key
            )
        finally:
            await engine.dispose()

    seeded = asyncio.run(seed())

    assert len(seeded.accounts) == accounts
    assert sorted(account for user in seeded.users for account in user.accounts) == sorted(
        account.account_id for account in seeded.accounts
    )
