"""`tradeguard demo`: the service and a simulated broker in one process, with a live summary."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from tradeguard.auth.users import create_user
from tradeguard.bridges.simulator.clock import BrokerClock
from tradeguard.bridges.simulator.scenario import DEMO_SCENARIO
from tradeguard.bridges.simulator.simulation import BrokerFactory, StepReport, run_demo_simulation
from tradeguard.settings import Settings
from tradeguard.store.db import describe_database

if TYPE_CHECKING:
    from tradeguard.demo_mt5 import Mt5Bridges
    from tradeguard.services import Services

DEMO_EMAIL = "demo@tradeguard.local"

# In the order of the simulator's roles: steady, divergent, reckless.
DEMO_ACCOUNTS = (
    ("Follower A (steady)", "DemoBroker-Live", "50001"),
    ("Follower B (unreliable broker)", "DemoBroker-Live", "50002"),
    ("Follower C (reckless)", "DemoBroker-Live", "50003"),
)


class DemoAccount(NamedTuple):
    account_id: int
    name: str
    device: tuple[str, str]
    """(device_id, secret) of the account's bridge."""


def _demo_settings(settings: Settings) -> tuple[Settings, bool]:
    """The settings to demo with, and whether the database is a fresh one of the demo's own."""
    if settings.database_url:
        return settings, False
    database = settings.data_dir / "demo.db"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for leftover in (database, *(database.with_name(database.name + tail) for tail in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    return settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{database}"}), True


def _demo_console() -> Console:
    # Off a terminal (a log file, a pipe) a table wider than 80 columns reads better than a wrapped one.
    probe = Console(stderr=True)
    return probe if probe.is_terminal else Console(stderr=True, width=120)


def _configure_demo_logging(settings: Settings, out: Console) -> None:
    # Warnings only, unless asked for more: the live table is the demo's output.
    level = settings.log_level if "log_level" in settings.model_fields_set else "WARNING"
    handler = RichHandler(console=out, show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler])


class _DemoServer(uvicorn.Server):
    """Asked to stop by a signal, the server first lets the demo stop what reports to it (the
    bridge processes), so that they do not log its absence; a second signal stops it at once."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._signal: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signal is not None:
            super().handle_exit(sig, frame)
            return
        self._signal = sig
        self._loop.call_soon_threadsafe(self.stop_requested.set)

    def finish(self) -> None:
        """Stop serving; a signal that asked for it is raised again once stopped, as uvicorn does."""
        if self._signal is not None:
            super().handle_exit(self._signal, None)
        else:
            self.should_exit = True


async def _run_demo(
    settings: Settings,
    host: str,
    port: int,
    *,
    seed: int,
    cadence: float,
    steps: int | None,
    fresh: bool,
    mt5_bridge: bool,
    out: Console,
) -> None:
    from tradeguard.app import create_app

    web = create_app(settings)
    server = _DemoServer(uvicorn.Config(web, host=host, port=port, log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(server.stop_requested.wait())
    simulation: asyncio.Task | None = None
    bridges: Mt5Bridges | None = None
    try:
        with out.status("starting the service"):
            await _until_serving(server, serving)
        base = f"http://{_reachable_host(host)}:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            email, password = await _demo_login(web.state.services, fresh=fresh)
            sign_in = _signer(http, email, password)
            token = await sign_in()
            accounts = await _demo_accounts(http, token)
            say = functools.partial(out.print, soft_wrap=True)
            say(f"tradeguard demo at [bold]{base}/[/bold]  (API docs: {base}/docs)")
            say(f"login: [bold]{email}[/bold]  password: [bold]{password}[/bold]")
            database = describe_database(settings.resolved_database_url())
            say(f"[dim]database: {database}{' (new every run)' if fresh else ''}[/dim]")
            reported_elsewhere: dict[int, BrokerFactory] = {}
            if mt5_bridge:
                bridges, reported_elsewhere = await _start_bridges(settings, base, accounts, out)
                if not await _until_bridges_report(bridges, http, token, stopping, out):
                    return
            with _DemoProgress({account.account_id: account.name for account in accounts}, out) as progress:
                simulation = asyncio.create_task(
                    run_demo_simulation(
                        base,
                        user_token=token,
                        accounts=[account.account_id for account in accounts],
                        device_credentials={account.account_id: account.device for account in accounts},
                        cadence_seconds=cadence,
                        steps=steps,
                        seed=seed,
                        http=http,
                        on_step=progress,
                        renew_token=sign_in,
                        # The bridges report in real time: the story is told on the real clock too.
                        clock=BrokerClock.real_time() if mt5_bridge else None,
                        reported_elsewhere=reported_elsewhere,
                    )
                )
                await asyncio.wait({serving, simulation, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if simulation.done():
                result = simulation.result()
                problems = f", {len(result.problems)} failed requests" if result.problems else ""
                say(
                    f"simulation finished after {result.steps} steps{problems}; "
                    f"still serving at {base}/ (Ctrl-C to stop)"
                )
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if simulation is not None:
            simulation.cancel()
            await asyncio.gather(simulation, return_exceptions=True)
        if bridges is not None:
            await bridges.stop()
        stopping.cancel()
        server.finish()
        await asyncio.gather(serving, stopping, return_exceptions=True)


async def _start_bridges(
    settings: Settings, base: str, accounts: list[DemoAccount], out: Console
) -> tuple[Mt5Bridges, dict[int, BrokerFactory]]:
    """A stand-in terminal and a `tradeguard bridge mt5` process per account; the brokers to simulate them."""
    from tradeguard.demo_mt5 import BridgedAccount, Mt5Bridges

    folder = (settings.data_dir / "demo-mt5").resolve()
    bridges = Mt5Bridges(folder, base, out, balance=DEMO_SCENARIO.starting_balance)
    factories = bridges.prepare(
        [
            BridgedAccount(account.account_id, account.name, int(login), server, *account.device)
            for account, (_, server, login) in zip(accounts, DEMO_ACCOUNTS, strict=True)
        ]
    )
    out.print(
        f"[dim]MT5 terminals, bridge configurations and journals: {folder}/<login>/[/dim]", soft_wrap=True
    )
    try:
        await bridges.start()
    except BaseException:
        await bridges.stop()
        raise
    return bridges, factories


async def _until_bridges_report(
    bridges: Mt5Bridges, http: httpx.AsyncClient, token: str, stopping: asyncio.Task, out: Console
) -> bool:
    """Whether to go on: every bridge has sent its first snapshot (the story starts with tradeguard
    knowing each account's peak), or not within the time allowed; False when asked to stop meanwhile."""
    reported = asyncio.create_task(bridges.until_reported(http, token))
    with out.status("waiting for every bridge's first snapshot"):
        await asyncio.wait({reported, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not reported.done():
        reported.cancel()
        await asyncio.gather(reported, return_exceptions=True)
        return False
    if not reported.result():
        out.print("[yellow]not every bridge has reported yet; simulating anyway[/yellow]")
    return True


async def _until_serving(server: uvicorn.Server, serving: asyncio.Task) -> None:
    while not server.started:
        if serving.done():
            serving.result()
            raise typer.Exit(1)
        await asyncio.sleep(0.02)


def _reachable_host(host: str) -> str:
    """Where a browser on this machine, and this process, reach the server: not at a wildcard address."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)


async def _demo_login(services: Services, *, fresh: bool) -> tuple[str, str]:
    """A fresh password every run, so a demo left listening never has a guessable login.

    On a database of its own the demo user is always the same; on a configured database each run
    gets a user of its own, so earlier runs' accounts do not mix with this one's.
    """
    email = DEMO_EMAIL if fresh else f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}@tradeguard.local"
    password = secrets.token_urlsafe(12)
    async with services.sessions() as session:
        await create_user(session, email=email, password=password, role="user", now=datetime.now(UTC))
        await session.commit()
    return email, password


def _signer(http: httpx.AsyncClient, email: str, password: str) -> Callable[[], Awaitable[str]]:
    async def sign_in() -> str:
        response = await http.post("/api/v1/auth/token", data={"username": email, "password": password})
        response.raise_for_status()
        return response.json()["access_token"]

    return sign_in


async def _demo_accounts(http: httpx.AsyncClient, token: str) -> list[DemoAccount]:
    """The demo accounts, each with a bridge device registered through the API as an operator would."""
    headers = {"Authorization": f"Bearer {token}"}
    accounts = []
    for name, broker, login in DEMO_ACCOUNTS:
        created = await http.post(
            "/api/v1/accounts", json={"name": name, "broker": broker, "login": login}, headers=headers
        )
        created.raise_for_status()
        account_id = created.json()["id"]
        device = await http.post(f"/api/v1/accounts/{account_id}/devices", headers=headers)
        device.raise_for_status()
        accounts.append(DemoAccount(account_id, name, (device.json()["device_id"], device.json()["secret"])))
    return accounts


class _DemoProgress:
    """A small table of the demo accounts, live on a terminal; notable events are printed above it."""

    def __init__(self, names: dict[int, str], out: Console) -> None:
        self._names = names
        self._out = out
        self._live = Live(console=out, refresh_per_second=4) if out.is_terminal else None
        self._last: StepReport | None = None

    def __enter__(self) -> _DemoProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.stop()
        elif self._last is not None:
            self._out.print(self._table(self._last))

    def __call__(self, report: StepReport) -> None:
        self._last = report
        for event in report.events:
            who = self._names.get(event.account_id, "market")
            line = Text.assemble((f"step {event.step:>4}  ", "dim"), (f"{who}: ", "bold"), event.text)
            self._out.print(line, soft_wrap=True)
        if self._live is not None:
            self._live.update(self._table(report))
        elif report.step % 20 == 0:
            self._out.print(self._table(report))

    def _table(self, report: StepReport) -> Table:
        table = Table(
            title=f"step {report.step}, broker time {report.taken_at:%H:%M:%S}", title_justify="left"
        )
        for column in (
            "account",
            "equity",
            "drawdown",
            "open",
            "matched",
            "diverging",
            "status",
            "guard closes",
        ):
            table.add_column(
                column, justify="left" if column in ("account", "status") else "right", no_wrap=True
            )
        for view in report.accounts:
            table.add_row(
                self._names.get(view.account_id, str(view.account_id)),
                f"{view.equity:,.2f}",
                f"{view.drawdown_pct} %",
                str(view.open_positions),
                str(view.matched_positions),
                str(view.divergences),
                _STATUS_STYLE.get(view.status or "", view.status or "-"),
                str(view.commands_executed),
            )
        return table


_STATUS_STYLE = {
    "healthy": "[green]healthy[/green]",
    "warning": "[yellow]warning[/yellow]",
    "error": "[red]error[/red]",
    "idle": "[dim]idle[/dim]",
}


def run_demo(
    settings: Settings,
    host: str,
    port: int,
    *,
    seed: int,
    cadence: float,
    steps: int | None,
    mt5_bridge: bool = False,
) -> None:
    settings, fresh_database = _demo_settings(settings)
    out = _demo_console()
    _configure_demo_logging(settings, out)
    try:
        asyncio.run(
            _run_demo(
                settings,
                host,
                port,
                seed=seed,
                cadence=cadence,
                steps=steps,
                fresh=fresh_database,
                mt5_bridge=mt5_bridge,
                out=out,
            )
        )
    except KeyboardInterrupt:
        out.print("demo stopped")
