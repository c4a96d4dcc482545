"""The `tradeguard` command: serve, migrate, users, demo, bridge, replay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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

from tradeguard.accounts.risk_rules import RuleSetIn
from tradeguard.accounts.service import guard_rules_of
from tradeguard.auth import users
from tradeguard.auth.tokens import ROLES
from tradeguard.bridges.cli import bridge_app
from tradeguard.cache import ResponseCache
from tradeguard.demo import run_demo
from tradeguard.domain.guards.drawdown import DrawdownGuard
from tradeguard.domain.guards.rules import RuleSet
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.domain.replay import Replay, ReplayedPoint, UnreplayableRule, deciding_point, replay
from tradeguard.errors import InvalidInput, NotFound, TradeguardError
from tradeguard.ingest.validation import Symbol
from tradeguard.metrics import MULTIPROCESS_METRICS_DIR
from tradeguard.queries.replay import (
    ReplayHistory,
    account_audit_entry,
    replay_history,
    rules_in_force,
)
from tradeguard.replay.chart import replay_svg
from tradeguard.replay.report import (
    CAVEATS,
    decision_data,
    replay_json,
    rule_result_data,
    what_it_did,
)
from tradeguard.services import Services
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine, describe_database, session_factory, sqlite_path
from tradeguard.store.instruments import load_instrument_table, set_instrument
from tradeguard.store.models import Account, ReconciliationEvent, User
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


def _aware_moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from exc
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} names no zone: add one, e.g. {value}+00:00 or {value}Z", param_hint=option
        )
    return moment.astimezone(UTC)


def _rules_file(path: Path | None) -> RuleSetIn | None:
    """The rule set a file holds, in the body of PUT /accounts/{id}/guard-rules; each problem said
    at its field, as the API's 422 says it, and exit 2."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--rules") from exc
    try:
        return RuleSetIn.model_validate_json(text)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "the rule set"
            console.print(
                f"[red]{escape(str(path))}: {escape(where)}: {escape(error['msg'].removeprefix('Value error, '))}[/red]",
                soft_wrap=True,
            )
        raise typer.Exit(2) from None


_GUARDS_ENTRIES = frozenset({"halted", "guard_level"})
"""entries any guard writes, its name their reason"""


@dataclass(frozen=True)
class _ReplayInputs:
    account_id: int
    rule_set: RuleSet
    rules_source: str
    history: ReplayHistory
    entry: ReconciliationEvent | None


@app.command("replay")
def replay_command(
    account: Annotated[int, typer.Option("--account", help="The account's id.")],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="A JSON rule set, as PUT /api/v1/accounts/{id}/guard-rules takes it (presets included); "
            "the account's current rules when left out.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Replay snapshots taken at or after this ISO 8601 time, with its zone."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--to", help="Replay snapshots taken at or before this ISO 8601 time, with its zone."),
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write an SVG chart of the replay to this file.")
    ] = None,
    event: Annotated[
        int | None,
        typer.Option(
            "--event",
            help="An audit entry's id: replay up to it with the rules in force then, and show the snapshot "
            "that decided it.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decisions as JSON.")] = False,
) -> None:
    """Run a rule set over the account's stored equity history, as its guard would have, and say what
    it would have done and when: level and step changes, halts, closes and resumes."""
    start, end = _aware_moment(since, "--from"), _aware_moment(until, "--to")
    if event is not None and (rules is not None or end is not None):
        raise typer.BadParameter(
            "--event replays up to the entry with the rules in force then: give no --rules or --to with it",
            param_hint="--event",
        )
    rule_set_in = _rules_file(rules)

    async def read(session: AsyncSession) -> _ReplayInputs:
        found = await session.get(Account, account)
        if found is None:
            raise NotFound(f"account {account} not found")
        entry = None
        if event is not None:
            entry = await account_audit_entry(session, account, event)
            if entry.event_type in _GUARDS_ENTRIES and entry.reason != DrawdownGuard.name:
                raise InvalidInput(
                    f"audit entry {event} is the {entry.reason} guard's: the replay judges the risk rules only"
                )
            in_force = await rules_in_force(session, found, entry)
            rule_set, source = in_force.rule_set, in_force.source
        elif rule_set_in is not None:
            rule_set, source = rule_set_in.to_domain(), f"the rules of {rules}"
        else:
            rule_set, source = guard_rules_of(found), "the account's current rules"
        moment = end if entry is None else entry.created_at
        history = await replay_history(session, account, since=start, until=moment)
        return _ReplayInputs(account, rule_set, source, history, entry)

    inputs = _in_session(read, must_exist=True)
    if not inputs.history.points:
        _fail(f"account {account} has no snapshots to replay in that window")
    try:
        replayed = replay(inputs.rule_set, inputs.history.points)
    except UnreplayableRule as exc:
        _fail(str(exc))
    _say_replay(inputs, replayed)
    if chart is not None:
        title = f"account {account}: replay of {len(replayed.points)} snapshots"
        chart.write_text(replay_svg(replayed, title=title), encoding="utf-8")
        console.print(f"chart written to {escape(str(chart))}", soft_wrap=True)
    if inputs.entry is not None:
        _show_event(inputs.entry, replayed, as_json=as_json)
    elif as_json:
        typer.echo(replay_json([decision_data(point) for point in replayed.changes]))
    else:
        _show_changes(replayed)


def _say_replay(inputs: _ReplayInputs, replayed: Replay) -> None:
    history = inputs.history
    first, last = history.points[0].taken_at, history.points[-1].taken_at
    console.print(f"rules: {escape(inputs.rules_source)}", soft_wrap=True)
    minutes = (
        f", {history.from_minutes} of them minute aggregates (each minute's last snapshot: a low within "
        "a minute is not replayed)"
        if history.from_minutes
        else ""
    )
    console.print(
        f"replayed {len(history.points)} snapshots from {first:%Y-%m-%d %H:%M:%S} to "
        f"{last:%Y-%m-%d %H:%M:%S} UTC{minutes}, from no state at the first",
        soft_wrap=True,
    )
    for caveat in CAVEATS:
        console.print(f"note: {caveat}", soft_wrap=True)


def _show_changes(replayed: Replay) -> None:
    table = Table("time (UTC)", "equity", "balance", "level", "trading", "what it would have done")
    for point in replayed.changes:
        table.add_row(*_point_cells(point), "\n".join(map(escape, what_it_did(point))))
    Console().print(table)
    if not replayed.changes:
        Console().print("the rules stayed quiet: no level or step change over the whole history")


def _point_cells(point: ReplayedPoint) -> list[str]:
    decision = point.decision
    level = decision.level.value
    if decision.level_changed:
        level = f"{decision.previous_level.value} -> {level}"
    return [
        f"{point.point.taken_at:%Y-%m-%d %H:%M:%S}",
        f"{point.point.equity:,.2f}",
        f"{point.point.balance:,.2f}",
        level,
        "halted" if decision.halted else "active",
    ]


def _limit_cell(data: dict) -> str:
    """The acting limit on the loss, or the floor under the metric for a step that has only one."""
    if data["limit"] is not None:
        return f"{data['limit']:,.2f} ({escape(data['limit_of'])})"
    return f"floor {data['floor']:,.2f} ({escape(data['limit_of'])})"


def _show_event(entry: ReconciliationEvent, replayed: Replay, *, as_json: bool) -> None:
    decided = deciding_point(replayed, entry.event_type)
    if as_json:
        typer.echo(
            replay_json(
                {
                    "event": {
                        "id": entry.id,
                        "type": entry.event_type,
                        "at": entry.created_at.isoformat(),
                        "message": entry.message,
                    },
                    "decided_by": None if decided is None else decision_data(decided),
                    "decisions": [decision_data(point) for point in replayed.changes],
                }
            )
        )
        return
    out = Console()
    out.print(
        f"audit entry {entry.id} ({escape(entry.event_type)}) at {entry.created_at:%Y-%m-%d %H:%M:%S} UTC: "
        f"{escape(entry.message)}",
        soft_wrap=True,
    )
    if decided is None:
        out.print(
            f"the replay up to it did nothing an entry of {escape(entry.event_type)} records", soft_wrap=True
        )
        return
    out.print(
        f"decided by the snapshot of {decided.point.taken_at:%Y-%m-%d %H:%M:%S} UTC: equity "
        f"{decided.point.equity:,.2f}, balance {decided.point.balance:,.2f}; "
        + escape("; ".join(what_it_did(decided)) or "no change"),
        soft_wrap=True,
    )
    table = Table("rule", "step", "loss", "reference", "limit", "headroom")
    for result in decided.decision.results:
        data = rule_result_data(result)
        table.add_row(
            result.rule.id + (" (shadow)" if result.rule.shadow else ""),
            data["step"] or "-",
            f"{result.loss:,.2f} ({result.loss_pct:.2f}%)",
            f"{result.reference:,.2f}",
            _limit_cell(data),
            f"{data['headroom']:,.2f}",
        )
    out.print(table)


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
