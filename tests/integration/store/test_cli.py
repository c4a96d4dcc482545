"""The `tradeguard` command: the schema, users and instruments from the shell, a replay of an
account's rules over its history, what it says when the user got something wrong, and
`tradeguard bench` running the checkout's benchmark."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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
from tradeguard.accounts.risk_rules import RuleSetIn
from tradeguard.accounts.service import change_guard_rules, create_account
from tradeguard.actions.audit import audit_event
from tradeguard.auth.tokens import Principal
from tradeguard.auth.users import authenticate
from tradeguard.cli import app, benchmarks_checkout
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine, describe_database, session_factory
from tradeguard.store.models import (
    AccountSnapshot,
    Base,
    EquityMinute,
    HistoryRetention,
    ReconciliationEvent,
    User,
)

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
        ("replay", "--account", "1"),
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


T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
EQUITIES = ("10000", "10500", "9800", "9000", "8900", "8300", "9000", "9500")
MAX_LOSS_RULES = {
    "initial_balance": 10000,
    "rules": [
        {
            "id": "max_loss",
            "metric": "equity",
            "reference": "initial_balance",
            "steps": [
                {"tier": "alert", "threshold": {"amount": 500}},
                {"tier": "close_all", "threshold": {"amount": 1500}},
            ],
        },
        {
            "id": "watch",
            "metric": "equity",
            "reference": "initial_balance",
            "shadow": True,
            "steps": [{"tier": "halt", "threshold": {"amount": 100}}],
        },
    ],
}
SET_RULES = {
    "initial_balance": 10000,
    "rules": [
        {
            "id": "loss",
            "metric": "equity",
            "reference": "initial_balance",
            "steps": [{"tier": "halt", "threshold": {"amount": 1050}}],
        }
    ],
}


def minute(index: int) -> datetime:
    return T0 + timedelta(minutes=index)


@pytest.fixture
def replayable(database, monkeypatch) -> dict[str, int]:
    """Account 1 with a snapshot a minute (equity 10,000 up to 10,500, down to 8,300, back to 9,500,
    balance 10,000) and its audit trail: rules set (a 1,050 loss from the initial balance halts), a
    halt at 8,900, back to the drawdown settings, a halt at 8,300. The audit entries' ids by name."""
    monkeypatch.setenv("COLUMNS", "250")
    assert create_user_cli("owner@b.co", role="owner").exit_code == 0

    async def seed(session):
        account = await create_account(
            session, Principal(1, "owner"), name="follower", broker="b", login="1", currency="USD", now=T0
        )
        for index, equity in enumerate(EQUITIES):
            session.add(
                AccountSnapshot(
                    account_id=account.id,
                    taken_at=minute(index),
                    received_at=minute(index) + timedelta(seconds=1),
                    balance=Decimal(10000),
                    equity=Decimal(equity),
                    margin=None,
                    peak_equity=Decimal(10500),
                    drawdown_pct=Decimal(0),
                )
            )
        body = RuleSetIn.model_validate(SET_RULES)
        change_guard_rules(session, account, body, by_user_id=1, now=T0 - timedelta(hours=1))
        halt = "account 1 halted"
        audit_event(
            session, account.id, "halted", halt, at=minute(4) + timedelta(seconds=1), reason="drawdown"
        )
        change_guard_rules(session, account, None, by_user_id=1, now=minute(4) + timedelta(seconds=30))
        audit_event(
            session, account.id, "halted", halt, at=minute(5) + timedelta(seconds=1), reason="drawdown"
        )
        audit_event(session, account.id, "guard_level", "EURUSD critical", at=minute(6), reason="market")
        await session.commit()
        rows = await session.scalars(select(ReconciliationEvent).order_by(ReconciliationEvent.id))
        ids = {}
        for row in rows:
            ids.setdefault(row.event_type, []).append(row.id)
        first_halt, second_halt = ids["halted"]
        return {"first_halt": first_halt, "second_halt": second_halt, "market": ids["guard_level"][0]}

    return run_on(database, seed)


def rules_file(tmp_path, rules: dict) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    return str(path)


def test_replay_says_when_a_rules_file_would_have_alerted_halted_and_closed(replayable, tmp_path):
    result = invoke("replay", "--account", "1", "--rules", rules_file(tmp_path, MAX_LOSS_RULES))

    assert result.exit_code == 0, result.output
    lines = said(result)
    assert "replayed 8 snapshots from 2026-11-30 10:00:00 to 2026-11-30 10:07:00 UTC" in lines
    assert "the replay makes no owner re-arm" in lines
    assert "the history holds no positions" in lines
    assert (
        "2026-11-30 10:02:00 9,800.00 10,000.00 normal active watch (shadow: would halt new trades), "
        "step none -> halt; loss 200.00 (2.00%) from 10,000.00, limit 100.00 (halt), headroom -100.00"
    ) in lines
    assert "2026-11-30 10:03:00 9,000.00 10,000.00 normal -> warning active max_loss: alert" in lines
    assert (
        "2026-11-30 10:05:00 8,300.00 10,000.00 warning -> critical halted HALT: trading halted "
        "CLOSE all positions (rule max_loss) max_loss: halt and close all positions, step alert -> close_all; "
        "loss 1,700.00 (17.00%) from 10,000.00, limit 1,500.00 (close_all), headroom -200.00"
    ) in lines
    # Back under its steps, the account stays halted: nobody re-armed it.
    assert "2026-11-30 10:06:00 9,000.00 10,000.00 critical -> warning halted" in lines


def test_replay_as_json_lists_the_decisions_with_every_rules_standing(replayable, tmp_path):
    result = invoke("replay", "--account", "1", "--rules", rules_file(tmp_path, MAX_LOSS_RULES), "--json")

    assert result.exit_code == 0, result.output
    decisions = json.loads(result.stdout)
    assert [decision["at"] for decision in decisions] == [minute(i).isoformat() for i in (2, 3, 5, 6)]
    halting = decisions[2]
    assert halting["level"] == "critical"
    assert (halting["halted"], halting["newly_halted"], halting["resumed"]) == (True, True, False)
    assert halting["closes"] == [{"rule": "max_loss", "positions": "all"}]
    max_loss, watch = halting["rules"]
    assert max_loss == {
        "rule": "max_loss",
        "shadow": False,
        "changed": True,
        "step": "close_all",
        "previous_step": "alert",
        "tier": "close_all",
        "halts": True,
        "resumed": False,
        "value": 8300.0,
        "reference": 10000.0,
        "loss": 1700.0,
        "loss_pct": 17.0,
        "limit_of": "close_all",
        "limit": 1500.0,
        "floor": None,
        "headroom": -200.0,
        "headroom_pct": -2.0,
        "acting_floor": 8500.0,
    }
    assert (watch["shadow"], watch["changed"], watch["step"]) == (True, False, "halt")
    assert [decision["halted"] for decision in decisions] == [False, False, True, True]


def test_replay_draws_equity_balance_floors_and_the_halt_in_an_svg_chart(replayable, tmp_path):
    chart = tmp_path / "replay.svg"

    result = invoke(
        "replay", "--account", "1", "--rules", rules_file(tmp_path, MAX_LOSS_RULES), "--chart", str(chart)
    )

    assert result.exit_code == 0, result.output
    assert f"chart written to {chart}" in said(result)
    svg = ElementTree.parse(chart).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    lines = {
        line.get("data-series"): line.get("points").split() for line in svg.iterfind(".//svg:polyline", ns)
    }
    assert set(lines) == {"equity", "balance", "max_loss acting floor", "watch acting floor (shadow)"}
    assert all(len(points) == len(EQUITIES) for points in lines.values())
    # The floor is flat (10,000 - 1,500), below every equity point but the halting one.
    [floor_y] = {float(point.split(",")[1]) for point in lines["max_loss acting floor"]}
    equity_y = [float(point.split(",")[1]) for point in lines["equity"]]
    assert [y > floor_y for y in equity_y] == [False] * 5 + [True, False, False]
    assert len(svg.findall(".//svg:path[@class='marker-halt']", ns)) == 2  # the halt, and the legend's
    texts = [text.text for text in svg.iterfind(".//svg:text", ns)]
    assert "time (UTC)" in texts
    assert "halted" in texts


def test_replay_of_an_event_uses_the_rules_then_in_force_and_shows_the_deciding_snapshot(replayable):
    first = invoke("replay", "--account", "1", "--event", str(replayable["first_halt"]))

    assert first.exit_code == 0, first.output
    lines = said(first)
    assert "rules: the rules set by audit entry 1 at 2026-11-30 09:00:00" in lines
    assert "replayed 5 snapshots from 2026-11-30 10:00:00 to 2026-11-30 10:04:00 UTC" in lines
    assert "decided by the snapshot of 2026-11-30 10:04:00 UTC: equity 8,900.00, balance 10,000.00" in lines
    assert (
        "rule step loss reference limit headroom loss halt 1,100.00 (11.00%) 10,000.00 1,050.00 (halt) -50.00"
        in lines
    )

    second = invoke("replay", "--account", "1", "--event", str(replayable["second_halt"]), "--json")

    assert second.exit_code == 0, second.output
    assert "rules: the account's drawdown settings as they are now (audit entry 3 went back to them)" in said(
        second
    )
    shown = json.loads(second.stdout)
    assert shown["event"]["type"] == "halted"
    decided = shown["decided_by"]
    assert (decided["at"], decided["newly_halted"]) == (minute(5).isoformat(), True)
    drawdown = decided["rules"][0]
    assert (drawdown["rule"], drawdown["step"], drawdown["reference"], drawdown["limit"]) == (
        "drawdown",
        "critical",
        10500.0,
        2100.0,
    )


def test_replay_of_an_audit_entry_it_cannot_explain_is_refused(replayable):
    refused(invoke("replay", "--account", "1", "--event", "999"), 1, "account 1 has no audit entry 999")
    refused(invoke("replay", "--account", "2"), 1, "account 2 not found")
    refused(
        invoke("replay", "--account", "1", "--event", str(replayable["market"])),
        1,
        f"audit entry {replayable['market']} is the market guard's: the replay judges the risk rules only",
    )


def test_replay_refuses_a_bad_rules_file_naming_the_field(replayable, tmp_path):
    bad = {
        "rules": [{"id": "x", "metric": "equity", "steps": [{"tier": "halt", "threshold": {"percent": 150}}]}]
    }

    result = invoke("replay", "--account", "1", "--rules", rules_file(tmp_path, bad))

    refused(result, 2, "rules.0.steps.0.threshold.percent: Input should be less than or equal to 100")
    assert result.stdout == ""


def test_replay_refuses_a_rule_on_a_strategys_floating_loss_naming_it(replayable, tmp_path):
    scoped = {
        "rules": [
            {
                "id": "strategy-a",
                "metric": "floating",
                "scope": {"kind": "strategy", "magics": [7]},
                "steps": [{"tier": "close_scope", "threshold": {"amount": 100}}],
            }
        ]
    }

    result = invoke("replay", "--account", "1", "--rules", rules_file(tmp_path, scoped))

    refused(result, 1, "rule 'strategy-a': measures the floating P&L of its strategy scope")


def test_replay_bounds_the_history_and_refuses_a_time_without_a_zone(replayable):
    bounded = invoke(
        "replay",
        "--account",
        "1",
        "--from",
        "2026-11-30T10:03:00Z",
        "--to",
        "2026-11-30T11:05:00+01:00",
        "--json",
    )

    assert bounded.exit_code == 0, bounded.output
    assert "replayed 3 snapshots from 2026-11-30 10:03:00 to 2026-11-30 10:05:00 UTC" in said(bounded)
    # From no state at 10:03 the peak is 9,000, and 8,300 only 7.8 % below it; the whole history's
    # peak, 10,500, puts it 21 % below, past the drawdown settings' critical 20 %.
    assert json.loads(bounded.stdout) == []
    whole = json.loads(invoke("replay", "--account", "1", "--json").stdout)
    assert [(decision["at"], decision["level"]) for decision in whole] == [
        (minute(4).isoformat(), "warning"),
        (minute(5).isoformat(), "critical"),
        (minute(6).isoformat(), "normal"),
    ]

    refused(
        invoke("replay", "--account", "1", "--from", "2026-11-30T10:03:00"),
        2,
        "Invalid value for --from: '2026-11-30T10:03:00' names no zone",
    )


def test_replay_reads_the_minutes_rolled_up_before_the_raw_points_kept(database):
    """Before the raw points kept, each minute's last snapshot: the low within a minute is lost."""
    assert create_user_cli("owner@b.co", role="owner").exit_code == 0

    async def seed(session):
        account = await create_account(
            session, Principal(1, "owner"), name="follower", broker="b", login="1", currency="USD", now=T0
        )
        for index, (low, last) in enumerate([("10000", "10000"), ("7000", "8500")]):
            equity = dict(zip(("first", "min", "max", "last"), ("10000", low, "10000", last), strict=True))
            session.add(
                EquityMinute(
                    account_id=account.id,
                    minute=minute(index),
                    snapshots=2,
                    first_taken_at=minute(index),
                    last_taken_at=minute(index) + timedelta(seconds=30),
                    peak_equity=Decimal(10000),
                    drawdown_pct=Decimal(0),
                    drawdown_max_pct=Decimal(0),
                    **{f"equity_{which}": Decimal(value) for which, value in equity.items()},
                    **{f"balance_{which}": Decimal(10000) for which in equity},
                )
            )
        session.add(HistoryRetention(series="raw", kept_from=minute(2)))
        # A raw point from before the boundary waits for the next roll-up: its minute counts it.
        for at, equity in [(minute(1) + timedelta(seconds=45), "1"), (minute(2), "7900")]:
            session.add(
                AccountSnapshot(
                    account_id=account.id,
                    taken_at=at,
                    received_at=at,
                    balance=Decimal(10000),
                    equity=Decimal(equity),
                    margin=None,
                    peak_equity=Decimal(10000),
                    drawdown_pct=Decimal(0),
                )
            )
        await session.commit()

    run_on(database, seed)

    result = invoke("replay", "--account", "1", "--json")

    assert result.exit_code == 0, result.output
    assert (
        "replayed 3 snapshots from 2026-11-30 10:00:30 to 2026-11-30 10:02:00 UTC, 2 of them minute aggregates"
        in said(result)
    )
    # 8,500 is 15 % below the peak (a warning); the minute's 7,000 would have been critical.
    assert [
        (decision["at"], decision["level"], decision["equity"]) for decision in json.loads(result.stdout)
    ] == [
        ((minute(1) + timedelta(seconds=30)).isoformat(), "warning", 8500.0),
        (minute(2).isoformat(), "critical", 7900.0),
    ]
