"""The `tradeguard` command: serve, migrate, users, demo, bridge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
import uvicorn
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tradeguard.auth import users
from tradeguard.auth.tokens import ROLES
from tradeguard.bridges.cli import bridge_app
from tradeguard.cache import ResponseCache
from tradeguard.demo import run_demo
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.errors import TradeguardError
from tradeguard.ingest.validation import Symbol
from tradeguard.metrics import MULTIPROCESS_METRICS_DIR
from tradeguard.services import Services
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine, describe_database, session_factory, sqlite_path
from tradeguard.store.instruments import load_instrument_table, set_instrument
from tradeguard.store.models import User
from tradeguard.worker import Worker

T = TypeVar("T")

app = typer.Typer(help="Account reconciliation and risk guards for signal and copy-trading platforms.")
users_app = typer.Typer(help="Manage users.")
app.add_typer(users_app, name="users")
instruments_app = typer.Typer(
    help="Instrument overrides: pip and contract sizes that differ from the conventions."
)
app.add_typer(instruments_app, name="instruments")
app.add_typer(bridge_app, name="bridge")
console = Console(stderr=True)
_SYMBOL = TypeAdapter(Symbol)


def _fail(message: str) -> NoReturn:
    """End the command on a mistake the user can fix: its message, one line on stderr, exit 1."""
    console.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    raise typer.Exit(1)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        _fail(
            "; ".join(
                f"TRADEGUARD_{'_'.join(map(str, error['loc'])).upper()}: "
                + error["msg"].removeprefix("Value error, ")
                for error in exc.errors()
            )
        )


def _say_database(settings: Settings) -> None:
    console.print(f"database: {describe_database(settings.resolved_database_url())}", soft_wrap=True)


def _run_on_database(work: Callable[[AsyncEngine], Awaitable[T]], *, must_exist: bool = False) -> T:
    """Run `work` on the configured database, said on stderr first.

    With `must_exist`, an embedded database that is not there is refused rather than created empty:
    a command that only reads or changes what is stored was most likely run from the wrong folder.
    """
    settings = _settings()
    _say_database(settings)
    path = sqlite_path(settings.resolved_database_url())
    if must_exist and path is not None and not path.exists():
        _fail(
            f"no database at {path}: run this where `tradeguard serve` runs, "
            "or set TRADEGUARD_DATA_DIR or TRADEGUARD_DATABASE_URL"
        )

    async def run() -> T:
        engine = _engine(settings)
        try:
            await _check_answers(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except TradeguardError as exc:
        _fail(str(exc))


def _in_session(work: Callable[[AsyncSession], Awaitable[T]], *, must_exist: bool = False) -> T:
    """`work` in one transaction, committed, on the configured database brought up to date first."""

    async def run(engine: AsyncEngine) -> T:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            result = await work(session)
            await session.commit()
            return result

    return _run_on_database(run, must_exist=must_exist)


def _change_user(change: Callable[[AsyncSession, ResponseCache], Awaitable[User]]) -> User:
    """A change of what a user's tokens vouch for, in the cache the servers read, so they refuse the older tokens."""

    async def run(engine: AsyncEngine) -> User:
        await migrate.upgrade(engine)
        services = Services.open(_settings())
        try:
            async with services.sessions() as session:
                return await change(session, services.cache)
        finally:
            await services.close()

    return _run_on_database(run, must_exist=True)


def _engine(settings: Settings) -> AsyncEngine:
    try:
        return create_engine(settings)
    except (ArgumentError, NoSuchModuleError, InvalidRequestError, ModuleNotFoundError) as exc:
        _fail(f"TRADEGUARD_DATABASE_URL cannot be used: {exc}")
    except OSError as exc:
        _fail(f"cannot open the database: {exc}")


async def _check_answers(engine: AsyncEngine) -> None:
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as exc:
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc.strerror or exc).strip()
        _fail(f"cannot open the database: {reason.splitlines()[0] if reason else type(exc).__name__}")


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    return role


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


Email = Annotated[str, typer.Argument(help="The user's email.")]
PasswordFromStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]
Role = Annotated[str, typer.Option(callback=_checked_role, help=f"One of: {', '.join(ROLES)}.")]


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def server_options(settings: Settings, host: str, port: int) -> dict:
    """How `tradeguard serve` runs uvicorn: the benchmarks run their bare app with the same options."""
    return {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "access_log": settings.access_log,
    }


def _run_server(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    options = server_options(settings, host, port)
    if workers > 1:
        # Worker processes import the app themselves; each reads the same TRADEGUARD_* settings,
        # and they write their metrics where /metrics, in any of them, adds them all up.
        with _shared_metrics_dir():
            uvicorn.run("tradeguard.app:create_app", factory=True, workers=workers, **options)
        return
    from tradeguard.app import create_app

    uvicorn.run(create_app(settings), **options)


@contextlib.contextmanager
def _shared_metrics_dir():
    if os.environ.get(MULTIPROCESS_METRICS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="tradeguard-metrics-") as directory:
        os.environ[MULTIPROCESS_METRICS_DIR] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_METRICS_DIR]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes; more than one needs PostgreSQL and Redis.")
    ] = 1,
) -> None:
    """Run the API (migrating the database first unless TRADEGUARD_AUTO_MIGRATE=false)."""
    settings = _settings()
    _configure_logging(settings)
    if workers > 1 and (not settings.redis_url or not settings.database_url):
        raise typer.BadParameter(
            "several processes must share PostgreSQL (TRADEGUARD_DATABASE_URL) and Redis (TRADEGUARD_REDIS_URL)",
            param_hint="--workers",
        )
    if settings.auto_migrate:
        # What start-up does first, here where a database that does not answer is said in one line.
        _run_on_database(migrate.upgrade)
    else:
        _say_database(settings)
    _run_server(settings, host, port, workers)


@app.command()
def worker() -> None:
    """Run the sweep (stale feeds, command time-outs) and alert delivery, for API processes started
    with TRADEGUARD_RUN_WORKER_IN_API=false. Any number may run against the same database."""
    settings = _settings()
    _configure_logging(settings)

    async def run() -> None:
        services = Services.open(settings)
        try:
            console.print(
                f"tradeguard worker on {describe_database(services.engine.url)}, "
                f"every {settings.sweep_interval_seconds} s",
                soft_wrap=True,
            )
            await Worker(services).run()
        finally:
            await services.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command("migrate")
def migrate_command(
    revision: Annotated[
        str, typer.Argument(help="Target revision: head, base (no schema), or a revision such as 0001.")
    ] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision instead.")] = False,
) -> None:
    """Upgrade (or downgrade) the database schema."""

    async def run(engine: AsyncEngine) -> None:
        with console.status("migrating"):
            await (migrate.downgrade if down else migrate.upgrade)(engine, revision)

    _run_on_database(run)
    console.print(f"[green]database {'downgraded' if down else 'migrated'} to {revision}[/green]")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's email, their login name.")],
    role: Role = "user",
    password_stdin: PasswordFromStdin = False,
) -> None:
    """Create a user; the password is prompted for, or read from standard input."""
    password = _read_password(password_stdin)
    user = _in_session(
        lambda session: users.create_user(
            session, email=email, password=password, role=role, now=datetime.now(UTC)
        )
    )
    console.print(f"[green]created user {user.id} ({role})[/green]")


@users_app.command("list")
def users_list() -> None:
    """Every user, with their role and whether they may sign in."""
    table = Table("id", "email", "role", "active", "created")
    for user in _in_session(users.list_users, must_exist=True):
        table.add_row(
            str(user.id),
            user.email,
            user.role,
            "yes" if user.is_active else "no",
            f"{user.created_at:%Y-%m-%d %H:%M:%S}",
        )
    Console().print(table)


@users_app.command("deactivate")
def users_deactivate(email: Email) -> None:
    """Refuse the user's sign-ins from now on; their accounts and history stay."""
    user = _change_user(lambda session, cache: users.deactivate_user(session, cache, email))
    console.print(f"[green]{user.email} deactivated[/green]")


@users_app.command("activate")
def users_activate(email: Email) -> None:
    """Let a deactivated user sign in again."""
    user = _change_user(lambda session, cache: users.activate_user(session, cache, email))
    console.print(f"[green]{user.email} activated[/green]")


@users_app.command("set-password")
def users_set_password(email: Email, password_stdin: PasswordFromStdin = False) -> None:
    """Give the user a new password; prompted for, or read from standard input."""
    password = _read_password(password_stdin)
    user = _change_user(lambda session, cache: users.set_password(session, cache, email, password))
    console.print(f"[green]{user.email}: password changed[/green]")


@users_app.command("set-role")
def users_set_role(email: Email, role: Role) -> None:
    """Change what the user sees: owner and admin every account, user only their own."""
    user = _change_user(lambda session, cache: users.set_role(session, cache, email, role))
    console.print(f"[green]{user.email} is now {user.role}[/green]")


@instruments_app.command("set")
def instruments_set(
    symbol: Annotated[str, typer.Argument(help="The broker's symbol, e.g. XAUUSD or US30.")],
    pip_size: Annotated[str, typer.Option(help="Price distance of one pip, e.g. 0.1.")],
    contract_size: Annotated[str, typer.Option(help="Units per lot, e.g. 100.")],
) -> None:
    """Override a symbol's pip and contract size; API processes pick it up within a minute."""
    try:
        symbol = _SYMBOL.validate_python(symbol)
    except ValidationError as exc:
        raise typer.BadParameter(
            f"not a broker symbol: {symbol!r} (up to 32 letters, digits, . _ # -)", param_hint="SYMBOL"
        ) from exc
    try:
        pip, contract = Decimal(pip_size), Decimal(contract_size)
    except ArithmeticError as exc:
        raise typer.BadParameter("pip size and contract size must be decimal numbers") from exc
    if not (pip.is_finite() and contract.is_finite() and pip > 0 and contract > 0):
        raise typer.BadParameter("pip size and contract size must be positive")

    _in_session(lambda session: set_instrument(session, symbol, pip_size=pip, contract_size=contract))
    console.print(f"[green]{symbol}: pip {pip}, contract {contract}[/green]")


@instruments_app.command("list")
def instruments_list() -> None:
    """The overrides in force (symbols without one follow the conventions)."""
    overrides: InstrumentTable = _in_session(load_instrument_table, must_exist=True)
    table = Table("symbol", "pip size", "contract size")
    for instrument in sorted(overrides.overrides.values(), key=lambda item: item.symbol):
        table.add_row(instrument.symbol, str(instrument.pip_size), str(instrument.contract_size))
    Console().print(table)


PACKAGE_DIRECTORY = Path(__file__).resolve().parent


def benchmarks_checkout(package: Path = PACKAGE_DIRECTORY) -> Path | None:
    """The source checkout this package was imported from, when it holds the benchmarks (bench/ at its
    root, beside src/); None for an installed package, which carries none of them."""
    checkout = package.parent.parent
    return checkout if (checkout / "bench" / "__main__.py").is_file() else None


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def bench(context: typer.Context) -> None:
    """A short benchmark (cached reads against a bare ASGI app, ingest, breach to close command), from a
    source checkout: runs its `python -m bench quick`; `tradeguard bench --help` lists the options.
    """
    checkout = benchmarks_checkout()
    if checkout is None:
        _fail(
            "tradeguard bench runs from a source checkout: the benchmarks (bench/) are not installed "
            "with the package; see docs/benchmarks.md"
        )
    path = os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "quick", *context.args],
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )
    raise typer.Exit(done.returncode)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated market: the same seed, the same run.")] = 7,
    cadence: Annotated[
        float, typer.Option(min=0, help="Seconds between two snapshots of each account.")
    ] = 1.0,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Stop simulating after this many steps (default: never).")
    ] = None,
    mt5_bridge: Annotated[
        bool,
        typer.Option(
            "--mt5-bridge",
            help="Keep each account in a stand-in MT5 terminal, reported by a real `tradeguard bridge mt5` "
            "process whose log is shown above the table.",
        ),
    ] = False,
) -> None:
    """Serve, and drive demo accounts with a simulated broker: matched trades, divergences, a crash, a gap.

    Without TRADEGUARD_DATABASE_URL the demo runs on its own SQLite file, var/demo.db, recreated on
    every run so that a seed replays the same story; `serve` keeps using var/tradeguard.db. With
    --mt5-bridge the story runs on the real clock, and the terminals are under var/demo-mt5/.
    """
    run_demo(_settings(), host, port, seed=seed, cadence=cadence, steps=steps, mt5_bridge=mt5_bridge)


if __name__ == "__main__":
    app()
