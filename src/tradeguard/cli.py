"""The `tradeguard` command: serve, migrate, users, demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from tradeguard.auth.tokens import ROLES
from tradeguard.auth.users import create_user
from tradeguard.demo import run_demo
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.errors import TradeguardError
from tradeguard.metrics import MULTIPROCESS_METRICS_DIR
from tradeguard.services import Services
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine, session_factory
from tradeguard.store.instruments import load_instrument_table, set_instrument
from tradeguard.worker import Worker

app = typer.Typer(help="Account reconciliation and risk guards for signal and copy-trading platforms.")
users_app = typer.Typer(help="Manage users.")
app.add_typer(users_app, name="users")
instruments_app = typer.Typer(
    help="Instrument overrides: pip and contract sizes that differ from the conventions."
)
app.add_typer(instruments_app, name="instruments")
console = Console(stderr=True)


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run_server(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    if workers > 1:
        # Worker processes import the app themselves; each reads the same TRADEGUARD_* settings,
        # and they write their metrics where /metrics, in any of them, adds them all up.
        with _shared_metrics_dir():
            uvicorn.run(
                "tradeguard.app:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=settings.log_level.lower(),
            )
        return
    from tradeguard.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


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
    settings = get_settings()
    _configure_logging(settings)
    if workers > 1 and (not settings.redis_url or not settings.database_url):
        raise typer.BadParameter(
            "several processes must share PostgreSQL (TRADEGUARD_DATABASE_URL) and Redis (TRADEGUARD_REDIS_URL)",
            param_hint="--workers",
        )
    _run_server(settings, host, port, workers)


@app.command()
def worker() -> None:
    """Run the sweep (stale feeds, command time-outs) and alert delivery, for API processes started
    with TRADEGUARD_RUN_WORKER_IN_API=false. Any number may run against the same database."""
    settings = get_settings()
    _configure_logging(settings)

    async def run() -> None:
        services = Services.open(settings)
        try:
            console.print(
                f"tradeguard worker on {services.engine.dialect.name}, every {settings.sweep_interval_seconds} s"
            )
            await Worker(services).run()
        finally:
            await services.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command("migrate")
def migrate_command(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision instead.")] = False,
) -> None:
    """Upgrade (or downgrade) the database schema."""
    settings = get_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            with console.status(f"migrating {engine.url.render_as_string(hide_password=True)}"):
                if down:
                    await migrate.downgrade(engine, revision)
                else:
                    await migrate.upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(run())
    console.print(f"[green]database {'downgraded' if down else 'migrated'} to {revision}[/green]")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's email, their login name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "user",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user; the password is prompted for, or read from standard input."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = get_settings()

    async def run() -> int:
        engine = create_engine(settings)
        try:
            await migrate.upgrade(engine)
            async with session_factory(engine)() as session:
                user = await create_user(
                    session, email=email, password=password, role=role, now=datetime.now(UTC)
                )
                await session.commit()
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(run())
    except TradeguardError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]created user {user_id} ({role})[/green]")


@instruments_app.command("set")
def instruments_set(
    symbol: Annotated[str, typer.Argument(help="The broker's symbol, e.g. XAUUSD or US30.")],
    pip_size: Annotated[str, typer.Option(help="Price distance of one pip, e.g. 0.1.")],
    contract_size: Annotated[str, typer.Option(help="Units per lot, e.g. 100.")],
) -> None:
    """Override a symbol's pip and contract size; API processes pick it up within a minute."""
    try:
        pip, contract = Decimal(pip_size), Decimal(contract_size)
    except ArithmeticError as exc:
        raise typer.BadParameter("pip size and contract size must be decimal numbers") from exc
    if not (pip.is_finite() and contract.is_finite() and pip > 0 and contract > 0):
        raise typer.BadParameter("pip size and contract size must be positive")

    async def run() -> None:
        engine = create_engine(get_settings())
        try:
            await migrate.upgrade(engine)
            async with session_factory(engine)() as session:
                await set_instrument(session, symbol, pip_size=pip, contract_size=contract)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
    console.print(f"[green]{symbol.upper()}: pip {pip}, contract {contract}[/green]")


@instruments_app.command("list")
def instruments_list() -> None:
    """The overrides in force (symbols without one follow the conventions)."""

    async def run() -> InstrumentTable:
        engine = create_engine(get_settings())
        try:
            await migrate.upgrade(engine)
            async with session_factory(engine)() as session:
                return await load_instrument_table(session)
        finally:
            await engine.dispose()

    table = Table("symbol", "pip size", "contract size")
    for instrument in sorted(asyncio.run(run()).overrides.values(), key=lambda item: item.symbol):
        table.add_row(instrument.symbol, str(instrument.pip_size), str(instrument.contract_size))
    Console().print(table)


@app.command()
def bench(
    accounts: Annotated[int, typer.Option(min=1, help="Seeded accounts.")] = 40,
    breaches: Annotated[
        int, typer.Option(min=1, help="Critical snapshots timed for breach to command.")
    ] = 40,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of load per read measurement.")] = 5.0,
    output: Annotated[Path, typer.Option(help="Where the machine-readable result goes.")] = Path(
        "var/bench/quick.json"
    ),
) -> None:
    """A short benchmark: cached reads against a bare ASGI app, ingest, breach to close command.

    On PostgreSQL and Redis when configured (in a database of its own, created and dropped),
    otherwise embedded. The full benchmarks are under bench/ (see docs/benchmarks.md).
    """
    from tradeguard.bench import run_quick_bench

    run_quick_bench(get_settings(), accounts=accounts, breaches=breaches, duration=duration, output=output)


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
) -> None:
    """Serve, and drive demo accounts with a simulated broker: matched trades, divergences, a crash, a gap.

    Without TRADEGUARD_DATABASE_URL the demo runs on its own SQLite file, var/demo.db, recreated on
    every run so that a seed replays the same story; `serve` keeps using var/tradeguard.db.
    """
    run_demo(get_settings(), host, port, seed=seed, cadence=cadence, steps=steps)


if __name__ == "__main__":
    app()
