"""The `tradeguard` command: the schema, users and instruments from the shell, what it says when
the user got something wrong, and `tradeguard bench` running the checkout's benchmark."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from tests.support.net import free_port
from tests.support.paths import REPO_ROOT
from tests.support.servers import TRADEGUARD
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)
from tradeguard import cli
from tradeguard.auth.users import authenticate
from tradeguard.cli import app, benchmarks_checkout
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine, describe_database, session_factory
from tradeguard.store.models import Base, User

PASSWORD = "longpassword"


@pytest.fixture
def clean_environment(tmp_path, monkeypatch) -> Path:
    """No TRADEGUARD_* setting from the shell that runs the tests; the data dir under tmp_path."""
    for name in [name for name in os.environ if name.startswith("TRADEGUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEGUARD_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = asyncio.run(create_postgres_database())
    try:
        yield postgres_url(name)
    finally:
        asyncio.run(drop_postgres_database(name))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, clean_environment, monkeypatch) -> str:
    """A database the CLI is pointed at through the environment, as an operator would."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{clean_environment / 'cli.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    monkeypatch.setenv("TRADEGUARD_DATABASE_URL", url)
    return url


def invoke(*args: str, input: str | None = None):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), input=input)
    finally:
        get_settings.cache_clear()


def said(result) -> str:
    """What the command printed, with rich's boxes and line wrapping taken out."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", result.output).split())


def refused(result, exit_code: int, message: str) -> None:
    """The command ended on its own terms (no exception escaped) with `message` on stderr."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert message in " ".join(re.sub(r"[\u2500-\u257f]", " ", result.stderr).split())


def create_user_cli(email: str, *, role: str = "admin", password: str = PASSWORD):
    return invoke("users", "create", email, "--role", role, "--password-stdin", input=password + "\n")


def run_on(database: str, work):
    """Run `work(session)` against the CLI's database, outside the CLI."""

    async def run():
        engine = create_engine(Settings(database_url=database))
        try:
            async with session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table_names(database: str) -> set[str]:
    async def names(session):
        connection = await session.connection()
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))

    return run_on(database, names)


def user_count(database: str) -> int:
    if "users" not in table_names(database):
        return 0

    async def count(session):
        return await session.scalar(select(func.count()).select_from(User))

    return run_on(database, count)


def stored_user(database: str, email: str) -> User:
    async def find(session):
        return await session.scalar(select(User).where(User.email == email))

    return run_on(database, find)


def signs_in(database: str, email: str, password: str) -> bool:
    async def sign_in(session):
        return await authenticate(session, email=email, password=password)

    return run_on(database, sign_in) is not None


def test_migrate_creates_the_schema(database):
    result = invoke("migrate")

    assert result.exit_code == 0, result.output
    assert set(Base.metadata.tables) | {"alembic_version"} == table_names(database)


@pytest.mark.parametrize("spelling", ["base", "BASE"])
def test_migrate_down_to_base_drops_the_schema(database, spelling):
    assert invoke("migrate").exit_code == 0

    result = invoke("migrate", spelling, "--down")

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
    assert user_count(database) == 0


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


def test_migrate_to_an_unknown_revision_names_the_revisions_and_leaves_the_schema(database):
    assert invoke("migrate").exit_code == 0

    result = invoke("migrate", "nope", "--down")

    refused(
        result, 1, f"Can't locate revision identified by 'nope' (revisions: {', '.join(migrate.revisions())})"
    )
    assert set(Base.metadata.tables) <= table_names(database)


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The command in a process of its own, as a user's shell runs it: what reaches the terminal."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("TRADEGUARD_")}
    return subprocess.run(
        [sys.executable, "-c", "from tradeguard.cli import app; app()", *args],
        env=inherited | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args", [("migrate",), ("users", "list"), ("instruments", "list"), ("serve", "--port", "0")]
)
def test_a_database_that_does_not_answer_is_said_in_one_line_not_a_traceback(tmp_path, args):
    port = free_port()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/tradeguard"

    done = run_cli(*args, env={"TRADEGUARD_DATABASE_URL": url}, cwd=tmp_path)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"database: {url}",
        f"cannot open the database: Connect call failed ('127.0.0.1', {port})",
    ]


def test_an_unknown_revision_is_said_in_one_line_not_a_traceback(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    done = run_cli("migrate", "nope", "--down", env={"TRADEGUARD_DATABASE_URL": url}, cwd=tmp_path)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("Can't locate revision identified by 'nope'")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgres://app:s3cret@db.example:5432/app?sslmode=require",
            "postgresql+asyncpg://app:s3cret@db.example:5432/app?ssl=require",
        ),
        ("postgresql://app@db.example/app", "postgresql+asyncpg://app@db.example/app"),
        (
            "postgresql+asyncpg://app@db.example/app?ssl=require",
            "postgresql+asyncpg://app@db.example/app?ssl=require",
        ),
        ("sqlite:////srv/tradeguard.db", "sqlite+aiosqlite:////srv/tradeguard.db"),
    ],
)
def test_a_database_url_without_a_driver_is_used_through_tradeguards_async_driver(given, used):
    assert Settings(database_url=given).database_url == used


def test_a_postgres_url_as_hosting_platforms_give_it_works(clean_environment, postgres_database, monkeypatch):
    monkeypatch.setenv(
        "TRADEGUARD_DATABASE_URL",
        postgres_database.replace("postgresql+asyncpg://", "postgres://") + "?sslmode=disable",
    )

    result = invoke("migrate")

    assert result.exit_code == 0, result.output
    assert f"database: {postgres_database}?ssl=disable" in result.stderr
    assert set(Base.metadata.tables) <= table_names(postgres_database)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://app@db.example/app", "TRADEGUARD_DATABASE_URL: tradeguard runs on PostgreSQL"),
        ("db.example:5432", "TRADEGUARD_DATABASE_URL: not a database URL"),
        ("postgresql+nosuchdriver://app@db.example/app", "TRADEGUARD_DATABASE_URL cannot be used"),
    ],
)
def test_a_database_url_tradeguard_cannot_use_is_refused_with_what_is_wrong(
    clean_environment, monkeypatch, url, message
):
    monkeypatch.setenv("TRADEGUARD_DATABASE_URL", url)

    refused(invoke("users", "list"), 1, message)


def test_a_setting_that_is_not_acceptable_is_refused_with_its_name(clean_environment, monkeypatch):
    monkeypatch.setenv("TRADEGUARD_JWT_EXPIRES_SECONDS", "an hour")

    refused(invoke("users", "list"), 1, "TRADEGUARD_JWT_EXPIRES_SECONDS: Input should be a valid integer")


def test_every_command_on_the_database_says_which_one_without_its_password(database):
    shown = describe_database(database).removesuffix(" (new)")
    results = [
        invoke("migrate"),
        create_user_cli("a@b.co"),
        invoke("users", "list"),
        invoke("users", "set-role", "a@b.co", "--role", "user"),
        invoke("instruments", "set", "US30", "--pip-size", "1", "--contract-size", "1"),
        invoke("instruments", "list"),
    ]

    for result in results:
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines()[0] in (f"database: {shown}", f"database: {shown} (new)")
    assert describe_database("postgresql+asyncpg://app:s3cret@db.example/app") == (
        "postgresql+asyncpg://app:***@db.example/app"
    )


def test_the_default_database_is_in_var_under_the_current_folder_said_with_its_full_path(
    clean_environment, monkeypatch
):
    monkeypatch.delenv("TRADEGUARD_DATA_DIR")
    monkeypatch.chdir(clean_environment)
    path = clean_environment.resolve() / "var" / "tradeguard.db"

    created = invoke("migrate")
    again = invoke("migrate")

    assert f"database: sqlite {path} (new)" in created.stderr.splitlines()
    assert f"database: sqlite {path}" in again.stderr.splitlines()
    assert path.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("users", "list"),
        ("users", "deactivate", "a@b.co"),
        ("users", "set-role", "a@b.co", "--role", "owner"),
        ("instruments", "list"),
    ],
)
def test_commands_on_what_is_stored_refuse_a_missing_embedded_database_rather_than_create_one(
    clean_environment, monkeypatch, args
):
    monkeypatch.delenv("TRADEGUARD_DATA_DIR")
    monkeypatch.chdir(clean_environment)
    path = clean_environment.resolve() / "var" / "tradeguard.db"

    refused(invoke(*args), 1, f"no database at {path}: run this where `tradeguard serve` runs")
    assert not path.exists()


def test_users_list_shows_every_user_with_role_and_whether_active(database):
    assert create_user_cli("a@b.co", role="owner").exit_code == 0
    assert create_user_cli("c@d.co", role="user").exit_code == 0
    assert invoke("users", "deactivate", "c@d.co").exit_code == 0

    listed = invoke("users", "list")

    assert listed.exit_code == 0, listed.output
    lines = said(listed)
    assert "id email role active created" in lines
    assert re.search(r"1 a@b\.co owner yes \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines), lines
    assert re.search(r"2 c@d\.co user no \d{4}-\d\d-\d\d", lines), lines


def test_a_deactivated_user_cannot_sign_in_until_activated_again(database):
    assert create_user_cli("a@b.co").exit_code == 0

    deactivated = invoke("users", "deactivate", "A@B.co")

    assert deactivated.exit_code == 0, deactivated.output
    assert not signs_in(database, "a@b.co", PASSWORD)
    assert not stored_user(database, "a@b.co").is_active

    activated = invoke("users", "activate", "a@b.co")

    assert activated.exit_code == 0, activated.output
    assert signs_in(database, "a@b.co", PASSWORD)


def test_set_password_replaces_the_password(database):
    assert create_user_cli("a@b.co").exit_code == 0

    result = invoke("users", "set-password", "a@b.co", "--password-stdin", input="anotherpassword\n")

    assert result.exit_code == 0, result.output
    assert signs_in(database, "a@b.co", "anotherpassword")
    assert not signs_in(database, "a@b.co", PASSWORD)


def test_set_password_refuses_a_short_one_and_keeps_the_old(database):
    assert create_user_cli("a@b.co").exit_code == 0

    result = invoke("users", "set-password", "a@b.co", "--password-stdin", input="short\n")

    refused(result, 1, "at least 8 characters")
    assert signs_in(database, "a@b.co", PASSWORD)


def test_set_role_changes_the_role(database):
    assert create_user_cli("a@b.co", role="user").exit_code == 0

    result = invoke("users", "set-role", "a@b.co", "--role", "admin")

    assert result.exit_code == 0, result.output
    assert "a@b.co is now admin" in said(result)
    assert stored_user(database, "a@b.co").role == "admin"


def test_set_role_refuses_an_unknown_role(database):
    assert create_user_cli("a@b.co", role="user").exit_code == 0

    refused(
        invoke("users", "set-role", "a@b.co", "--role", "root"), 2, "role must be one of owner, admin, user"
    )
    assert stored_user(database, "a@b.co").role == "user"


@pytest.mark.parametrize(
    "args",
    [
        ("users", "deactivate", "x@y.z"),
        ("users", "activate", "x@y.z"),
        ("users", "set-role", "x@y.z", "--role", "admin"),
        ("users", "set-password", "x@y.z", "--password-stdin"),
    ],
)
def test_changing_a_user_who_does_not_exist_says_so(database, args):
    assert invoke("migrate").exit_code == 0

    refused(invoke(*args, input=PASSWORD + "\n"), 1, "no user with email x@y.z")
    assert user_count(database) == 0


@pytest.mark.parametrize("symbol", ["XAU USD", "", "EURUSD/", "A" * 33])
def test_instruments_set_refuses_what_is_not_a_broker_symbol(database, symbol):
    assert invoke("migrate").exit_code == 0

    result = invoke("instruments", "set", symbol, "--pip-size", "0.1", "--contract-size", "100")

    refused(result, 2, f"not a broker symbol: {symbol!r}")
    assert "XAU" not in said(invoke("instruments", "list"))


def test_bench_runs_the_checkouts_quick_benchmark_with_the_options_given():
    done = subprocess.run(
        [*TRADEGUARD, "bench", "--breaches", "3", "--accounts", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert benchmarks_checkout() == REPO_ROOT
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("usage: python -m bench quick [-h] [--accounts ACCOUNTS]")
    assert done.stderr.strip().endswith("argument --accounts: 0 is below 1")


def test_bench_says_in_one_line_that_an_installed_package_has_no_benchmarks(tmp_path):
    installed = tmp_path / "site-packages"
    shutil.copytree(
        Path(cli.__file__).parent, installed / "tradeguard", ignore=shutil.ignore_patterns("__pycache__")
    )
    run_installed = "import tradeguard.cli as cli; print(cli.__file__); cli.app()"

    done = subprocess.run(
        [sys.executable, "-c", run_installed, "bench"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )

    assert done.stdout.strip() == str(installed / "tradeguard" / "cli.py")
    assert benchmarks_checkout(installed / "tradeguard") is None
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "tradeguard bench runs from a source checkout: the benchmarks (bench/) are not installed "
        "with the package; see docs/benchmarks.md"
    )
