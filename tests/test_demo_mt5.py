"""`tradeguard demo --mt5-bridge`: the demo's accounts in stand-in MT5 terminals, reported by real bridges.

One run of the command as a process, on its own SQLite database: what tradeguard holds of each
account is compared with the account's terminal (the file the bridge process read and wrote), the
guard's close with the requests the terminal received, and the bridge processes are looked for
after the demo stopped.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.net import free_port
from tradeguard.bridges.mt5 import standin as mt5
from tradeguard.bridges.mt5.standin_terminal import StandinTerminal
from tradeguard.bridges.mt5.terminal_broker import command_comment
from tradeguard.bridges.simulator import DEMO_SCENARIO
from tradeguard.demo import DEMO_ACCOUNTS, DEMO_EMAIL

STEPS = DEMO_SCENARIO.scripted_steps
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

    def until_said(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"the demo did not say {text!r}:\n{self.output}")
            time.sleep(0.05)
        return self.output

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(10)
        return code


def eventually(check, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"still not so after {timeout} s: {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoProcess:
    folder = tmp_path_factory.mktemp("demo-mt5")
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TRADEGUARD_")}
    command = [sys.executable, "-m", "tradeguard.cli", "demo", "--mt5-bridge", "--port", str(port)]
    started_at = datetime.now(UTC)
    process = subprocess.Popen(
        [*command, "--steps", str(STEPS), "--cadence", "0.3"],
        cwd=folder,
        env={**environment, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = DemoProcess(process, folder, f"http://127.0.0.1:{port}", started_at)
    try:
        running.until_said(f"simulation finished after {STEPS} steps;")
        yield running
    finally:
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.stop()


@pytest.fixture(scope="module")
def api(demo) -> httpx.Client:
    password = re.search(r"password: (\S+)", demo.output).group(1)
    token = httpx.post(
        f"{demo.base}/api/v1/auth/token", data={"username": DEMO_EMAIL, "password": password}
    ).json()["access_token"]
    with httpx.Client(base_url=demo.base, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def terminal_of(demo: DemoProcess, login: str) -> StandinTerminal:
    return StandinTerminal(demo.folder / "var" / "demo-mt5" / login / "terminal.sqlite3")


def accounts_by_login(api: httpx.Client) -> dict[str, dict]:
    return {account["login"]: account for account in api.get("/api/v1/accounts").json()["accounts"]}


def open_positions(api: httpx.Client, account_id: int) -> dict[str, Decimal]:
    answer = api.get("/api/v1/positions/open", params={"account_id": account_id}).json()
    return {position["ticket"]: Decimal(str(position["volume"])) for position in answer["positions"]}


def until_reported_as(api: httpx.Client, account_id: int, positions: dict[str, Decimal]) -> None:
    eventually(
        lambda: open_positions(api, account_id) == positions,
        f"account {account_id}'s open positions as its terminal holds them",
    )


def test_each_account_is_reported_by_its_bridge_as_its_terminal_holds_it(demo, api):
    accounts = accounts_by_login(api)
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
        until_reported_as(api, account["id"], held[login])
        status = api.get("/api/v1/reconciliation/status", params={"account_id": account["id"]}).json()
        assert status["total_syncs"] >= 1
        assert status["open_positions_count"] == len(held[login])
        point = api.get(f"/api/v1/accounts/{account['id']}/equity", params={"limit": 1}).json()["points"][-1]
        assert Decimal(str(point["balance"])) == balance
    # The steady account follows every signal: it holds trades, each matched to the platform's.
    steady = api.get("/api/v1/positions/open", params={"account_id": accounts[DEMO_ACCOUNTS[0][2]]["id"]})
    assert held[DEMO_ACCOUNTS[0][2]]
    assert all(position["matched_with_bot"] for position in steady.json()["positions"])


def test_the_bridges_derive_the_terminals_server_time_and_report_in_utc(demo, api):
    for name, _, login in DEMO_ACCOUNTS:
        assert re.search(
            rf"{re.escape(name)} .*mt5 login {login} .*server time is UTC\+2:00, derived from the ticks",
            demo.output,
        ), demo.output
    # Opened in the terminal at its server time, two hours ahead: reported at the real UTC time.
    opened = [
        datetime.fromisoformat(position["entry_time"])
        for account in accounts_by_login(api).values()
        for position in api.get("/api/v1/positions/open", params={"account_id": account["id"]}).json()[
            "positions"
        ]
    ]
    assert opened and all(demo.started_at <= moment <= datetime.now(UTC) for moment in opened)


def test_the_guards_close_is_carried_out_by_order_send_in_the_reckless_accounts_terminal(demo, api):
    account = accounts_by_login(api)[RECKLESS_LOGIN]
    events = api.get(
        "/api/v1/reconciliation/logs",
        params={"account_id": account["id"], "event_type": "close_command", "limit": 100},
    ).json()["events"]
    executed = [event for event in events if event["details"].get("acknowledged") == "executed"]
    assert executed, events
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
    guards = api.get("/api/v1/guards/status", params={"account_id": account["id"]}).json()
    assert guards["trading_allowed"] is False


def test_stopping_the_demo_stops_its_bridge_processes(demo, api):
    pids = [int(pid) for pid in re.findall(r"bridge pid (\d+):", demo.output)]
    assert len(pids) == len(DEMO_ACCOUNTS)
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)

    assert demo.stop() == 0, demo.output
    assert "demo stopped" in demo.output
    assert demo.output.count("bridge stopped, exit code 0") == len(DEMO_ACCOUNTS), demo.output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
