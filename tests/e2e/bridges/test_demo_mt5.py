"""`tradeguard demo --mt5-bridge`: the demo's accounts in stand-in MT5 terminals, reported by real bridges.

One run of the command as a process, on its own SQLite database: what tradeguard holds of each
account is compared with the account's terminal (the file the bridge process read and wrote), the
guard's close with the requests the terminal received, and the bridge processes are looked for
after the demo stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port
from tests.support.waiting import eventually
from tradeguard.bridges.mt5 import standin as mt5
from tradeguard.bridges.mt5.standin_terminal import StandinTerminal
from tradeguard.bridges.mt5.terminal_broker import command_comment
from tradeguard.bridges.simulator.scenario import DEMO_SCENARIO
from tradeguard.demo import DEMO_ACCOUNTS, DEMO_EMAIL

# Past the script, so that the simulation is still stepping when the bridge carries out the guard's close.
STEPS = DEMO_SCENARIO.scripted_steps + 10
RECKLESS_NAME, _, RECKLESS_LOGIN = DEMO_ACCOUNTS[2]


@dataclass
class DemoProcess:
    process: subprocess.Popen
    folder: Path
    base: str
    started_at: datetime
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        # Read all along, so that the demo never blocks on a full pipe while the test asks the API.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def said(self, text: str) -> bool:
        if text not in self.output and self.process.poll() is not None:
            pytest.fail(f"the demo stopped without saying {text!r}:\n{self.output}")
        return text in self.output

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(10)
        return code


@pytest.fixture(scope="module")
async def demo(tmp_path_factory) -> AsyncIterator[DemoProcess]:
    folder = tmp_path_factory.mktemp("demo-mt5")
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TRADEGUARD_")}
    command = [sys.executable, "-m", "tradeguard.cli", "demo", "--mt5-bridge", "--port", str(port)]
    started_at = datetime.now(UTC)
    process = subprocess.Popen(
        [*command, "--steps", str(STEPS), "--cadence", "0.25"],
        cwd=folder,
        env={**environment, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = DemoProcess(process, folder, f"http://127.0.0.1:{port}", started_at)
    finished = f"simulation finished after {STEPS} steps;"
    try:
        await eventually(lambda: running.said(finished), f"the demo saying {finished!r}", timeout=60)
        yield running
    finally:
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.stop()


@pytest.fixture(scope="module")
async def api(demo) -> AsyncIterator[httpx.AsyncClient]:
    password = re.search(r"password: (\S+)", demo.output).group(1)
    async with httpx.AsyncClient(base_url=demo.base) as client:
        signed_in = await client.post(
            "/api/v1/auth/token", data={"username": DEMO_EMAIL, "password": password}
        )
        client.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        yield client


def terminal_of(demo: DemoProcess, login: str) -> StandinTerminal:
    return StandinTerminal(demo.folder / "var" / "demo-mt5" / login / "terminal.sqlite3")


async def accounts_by_login(api: httpx.AsyncClient) -> dict[str, dict]:
    return {account["login"]: account for account in (await api.get("/api/v1/accounts")).json()["accounts"]}


async def open_positions(api: httpx.AsyncClient, account_id: int) -> list[dict]:
    return (await api.get("/api/v1/positions/open", params={"account_id": account_id})).json()["positions"]


async def until_reported_as(api: httpx.AsyncClient, account_id: int, held: dict[str, Decimal]) -> None:
    async def reported() -> bool:
        positions = await open_positions(api, account_id)
        return {position["ticket"]: Decimal(str(position["volume"])) for position in positions} == held

    await eventually(
        reported, f"account {account_id}'s open positions as its terminal holds them", timeout=15
    )


async def test_each_account_is_reported_by_its_bridge_as_its_terminal_holds_it(demo, api):
    accounts = await accounts_by_login(api)
    assert set(accounts) == {login for _, _, login in DEMO_ACCOUNTS}
    held = {}
    for login, account in accounts.items():
        terminal = terminal_of(demo, login)
        try:
            held[login] = {
                str(ticket): position["volume"] for ticket, position in terminal.positions().items()
            }
            balance = terminal.totals()["balance"]
        finally:
            terminal.close()
        # The story has ended, so the terminal no longer changes: the bridge's next snapshot shows it.
        await until_reported_as(api, account["id"], held[login])
        status = (await api.get("/api/v1/reconciliation/status", params={"account_id": account["id"]})).json()
        assert status["total_syncs"] >= 1
        assert status["open_positions_count"] == len(held[login])
        equity = await api.get(f"/api/v1/accounts/{account['id']}/equity", params={"limit": 1})
        assert Decimal(str(equity.json()["points"][-1]["balance"])) == balance
    # The steady account follows every signal: it holds trades, each matched to the platform's.
    steady_login = DEMO_ACCOUNTS[0][2]
    assert held[steady_login]
    steady = await open_positions(api, accounts[steady_login]["id"])
    assert all(position["matched_with_bot"] for position in steady)


async def test_the_bridges_derive_the_terminals_server_time_and_report_in_utc(demo, api):
    for name, _, login in DEMO_ACCOUNTS:
        assert re.search(
            rf"{re.escape(name)} .*mt5 login {login} .*server time is UTC\+2:00, derived from the ticks",
            demo.output,
        ), demo.output
    # Opened in the terminal at its server time, two hours ahead: reported at the real UTC time.
    opened = [
        datetime.fromisoformat(position["entry_time"])
        for account in (await accounts_by_login(api)).values()
        for position in await open_positions(api, account["id"])
    ]
    assert opened and all(demo.started_at <= moment <= datetime.now(UTC) for moment in opened)


async def test_the_guards_close_is_carried_out_by_order_send_in_the_reckless_accounts_terminal(demo, api):
    account = (await accounts_by_login(api))[RECKLESS_LOGIN]

    async def executed_closes() -> list[dict]:
        logs = await api.get(
            "/api/v1/reconciliation/logs",
            params={"account_id": account["id"], "event_type": "close_command", "limit": 100},
        )
        return [
            event for event in logs.json()["events"] if event["details"].get("acknowledged") == "executed"
        ]

    executed = await eventually(executed_closes, "the guard's close acknowledged as executed", timeout=15)
    terminal = terminal_of(demo, RECKLESS_LOGIN)
    try:
        requests = terminal.order_requests()
        deals = terminal.deals()
        positions = terminal.positions()
    finally:
        terminal.close()
    for event in executed:
        command_id, ticket = event["details"]["command_id"], int(event["ticket"])
        [sent] = [sent for sent in requests if sent.request["comment"] == command_comment(command_id)]
        assert sent.retcode == mt5.TRADE_RETCODE_DONE
        assert sent.request["position"] == ticket and sent.request["action"] == mt5.TRADE_ACTION_DEAL
        assert ticket not in positions
        [deal] = [deal for deal in deals if deal.comment == command_comment(command_id)]
        assert (deal.position_id, deal.entry, deal.reason) == (
            ticket,
            mt5.DEAL_ENTRY_OUT,
            mt5.DEAL_REASON_EXPERT,
        )
        # The bridge said so, and the demo shows its log under the account's name.
        assert f"{RECKLESS_NAME} " in demo.output
        assert re.search(
            rf"{re.escape(RECKLESS_NAME)} .*closing ticket {ticket} .*for command {command_id}", demo.output
        )
        assert re.search(rf"{re.escape(RECKLESS_NAME)} .*command {command_id}: executed", demo.output)
        # And the simulation saw the position leave the terminal.
        assert re.search(
            rf"{re.escape(RECKLESS_NAME)}: the bridge closed .*\(ticket {ticket}\) on a command", demo.output
        )
    guards = await api.get("/api/v1/guards/status", params={"account_id": account["id"]})
    assert guards.json()["trading_allowed"] is False


async def test_stopping_the_demo_stops_its_bridge_processes(demo, api):
    pids = [int(pid) for pid in re.findall(r"bridge pid (\d+):", demo.output)]
    assert len(pids) == len(DEMO_ACCOUNTS)
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)

    assert await asyncio.to_thread(demo.stop) == 0, demo.output
    assert "demo stopped" in demo.output
    assert demo.output.count("bridge stopped, exit code 0") == len(DEMO_ACCOUNTS), demo.output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
