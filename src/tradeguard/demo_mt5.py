"""`tradeguard demo --mt5-bridge`: each demo account in a stand-in MT5 terminal, reported by a real bridge.

Per account, a folder under the demo's data dir holds the terminal's file, the bridge's
configuration and its journal; a `tradeguard bridge mt5` process (this Python, the stand-in for
the MetaTrader5 package) reads the terminal, reports to the demo's server with the account's
device, and carries out the close commands with `order_send`. Its log lines are printed above
the demo's table, after the account's name.

Times: the terminal's server clock is the real one at UTC+2 (as many brokers' servers keep), and
the bridge derives that offset from the ticks and reports in UTC; the simulation runs on the real
clock too, so a trade the platform records and the position the terminal opens agree in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.text import Text

from tradeguard.bridges.mt5.standin_terminal import StandinTerminal
from tradeguard.bridges.simulated_terminal import TerminalHeldBroker, create_terminal
from tradeguard.bridges.simulator.market import SYMBOLS
from tradeguard.bridges.simulator.simulation import BrokerFactory

BRIDGE_COMMAND = (sys.executable, "-c", "from tradeguard.cli import app; app()", "bridge", "mt5")
STANDIN_MODULE = "tradeguard.bridges.mt5.standin"
SECRET_VARIABLE = "TRADEGUARD_DEMO_DEVICE_SECRET"
SERVER_UTC_OFFSET_HOURS = 2
STOP_TIMEOUT_SECONDS = 10.0
FIRST_SNAPSHOT_TIMEOUT_SECONDS = 30.0
_LOG_DATE = re.compile(r"^\d{4}-\d\d-\d\d ")


@dataclass(frozen=True, slots=True)
class BridgedAccount:
    account_id: int
    name: str
    login: int
    server: str
    device_id: str
    secret: str

    def __repr__(self) -> str:
        return f"BridgedAccount(account_id={self.account_id}, login={self.login}, secret=<hidden>)"


@dataclass
class _Bridge:
    account: BridgedAccount
    terminal: StandinTerminal
    config: Path
    process: asyncio.subprocess.Process | None = None
    relay: asyncio.Task | None = field(default=None, repr=False)


class Mt5Bridges:
    """The accounts' terminals and their bridge processes: `start`, then `stop` (always)."""

    def __init__(self, folder: Path, url: str, out: Console, *, balance: Decimal) -> None:
        self._folder = folder
        self._url = url
        self._out = out
        self._balance = balance
        self._bridges: list[_Bridge] = []
        self._stopping = False

    def prepare(self, accounts: Sequence[BridgedAccount]) -> dict[int, BrokerFactory]:
        """A fresh terminal and configuration per account; the brokers that keep their state there."""
        shutil.rmtree(self._folder, ignore_errors=True)
        factories: dict[int, BrokerFactory] = {}
        for account in accounts:
            folder = self._folder / str(account.login)
            folder.mkdir(parents=True)
            terminal = create_terminal(
                folder / "terminal.sqlite3",
                login=account.login,
                server=account.server,
                name=account.name,
                balance=self._balance,
                server_utc_offset_hours=SERVER_UTC_OFFSET_HOURS,
            )
            self._bridges.append(_Bridge(account, terminal, self._write_config(folder, account, terminal)))
            factories[account.account_id] = _factory(terminal)
        return factories

    def _write_config(self, folder: Path, account: BridgedAccount, terminal: StandinTerminal) -> Path:
        # JSON strings are TOML basic strings.
        config = folder / "bridge.toml"
        config.write_text(
            "\n".join(
                (
                    "[tradeguard]",
                    f"url = {json.dumps(self._url)}",
                    f"device_id = {json.dumps(account.device_id)}",
                    f"secret_env = {json.dumps(SECRET_VARIABLE)}",
                    "",
                    "[bridge]",
                    'journal = "journal.sqlite3"',
                    "read_seconds = 0.25",
                    "command_poll_seconds = 0.5",
                    "snapshot_seconds = 5",
                    "max_backoff_seconds = 5",
                    "",
                    "[mt5]",
                    f"login = {account.login}",
                    f"server = {json.dumps(account.server)}",
                    f"path = {json.dumps(str(terminal.path))}",
                    # Derived from the ticks' times, so that the bridge's conversion to UTC is exercised.
                    'server_utc_offset = "auto"',
                    f"watch = {json.dumps(list(SYMBOLS))}",
                    "",
                )
            ),
            encoding="utf-8",
        )
        return config

    async def start(self) -> None:
        for bridge in self._bridges:
            bridge.process = await asyncio.create_subprocess_exec(
                *BRIDGE_COMMAND,
                "--config",
                str(bridge.config),
                "--mt5-module",
                STANDIN_MODULE,
                env={**os.environ, SECRET_VARIABLE: bridge.account.secret},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                # A Ctrl-C at the terminal reaches the demo alone, which stops its bridges before its server.
                start_new_session=True,
            )
            bridge.relay = asyncio.create_task(self._relay(bridge))
            self._out.print(
                Text.assemble(
                    (f"{bridge.account.name}: ", "bold"),
                    f"bridge pid {bridge.process.pid}: tradeguard bridge mt5 --config {bridge.config} "
                    f"--mt5-module {STANDIN_MODULE}",
                ),
                soft_wrap=True,
            )

    async def until_reported(self, http: httpx.AsyncClient, token: str) -> bool:
        """Wait for every bridge's first snapshot (so that the story starts with the bridges watching)."""
        deadline = time.monotonic() + FIRST_SNAPSHOT_TIMEOUT_SECONDS
        waiting = {bridge.account.account_id for bridge in self._bridges}
        while waiting and time.monotonic() < deadline:
            for account_id in sorted(waiting):
                response = await http.get(
                    "/api/v1/reconciliation/status",
                    params={"account_id": account_id},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code == 200 and response.json()["total_syncs"] > 0:
                    waiting.discard(account_id)
            if waiting:
                if any(bridge.process.returncode is not None for bridge in self._bridges):
                    return False
                await asyncio.sleep(0.1)
        return not waiting

    async def stop(self) -> None:
        """SIGTERM to every bridge, then wait; kill only one that is still running after the timeout."""
        self._stopping = True
        running = [bridge for bridge in self._bridges if bridge.process is not None]
        for bridge in running:
            with contextlib.suppress(ProcessLookupError):
                bridge.process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(self._wait_or_kill(bridge) for bridge in running))
        await asyncio.gather(*(bridge.relay for bridge in running if bridge.relay is not None))
        for bridge in self._bridges:
            bridge.terminal.close()

    async def _wait_or_kill(self, bridge: _Bridge) -> None:
        try:
            await asyncio.wait_for(bridge.process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            bridge.process.kill()
            await bridge.process.wait()
            self._say(bridge, f"bridge did not stop within {STOP_TIMEOUT_SECONDS:.0f} s: killed")

    async def _relay(self, bridge: _Bridge) -> None:
        async for raw in bridge.process.stderr:
            line = _LOG_DATE.sub("", raw.decode("utf-8", errors="replace").rstrip())
            if line:
                self._say(bridge, line)
        code = await bridge.process.wait()
        self._say(
            bridge,
            f"bridge stopped, exit code {code}" if self._stopping else f"bridge exited with code {code}",
        )

    def _say(self, bridge: _Bridge, line: str) -> None:
        self._out.print(Text.assemble((f"{bridge.account.name} ", "bold magenta"), line), soft_wrap=True)


def _factory(terminal: StandinTerminal) -> BrokerFactory:
    return lambda market, rng: TerminalHeldBroker(market, rng, terminal)
