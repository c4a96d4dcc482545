"""The loop every shipped bridge runs, against a served tradeguard and a scripted broker account.

`ScriptedBroker` implements the Broker interface over an account in memory: the runtime under
test is real, and so is the server; the platform adapters are tested on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from tests.support.apps import LiveServer, make_settings, serve_live
from tests.support.bridging import Follower, register_follower
from tests.support.http_receiver import Reply
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from tradeguard.bridges.broker import (
    AccountReading,
    Binding,
    CloseOrder,
    CloseOutcome,
    OutcomeStatus,
    ReadFailed,
)
from tradeguard.bridges.config import BridgeFile, BridgeTimings, DeviceCredentials
from tradeguard.bridges.journal import Journal
from tradeguard.bridges.runtime import BridgeRefused, run_bridges
from tradeguard.cli import app

FAST = BridgeTimings(
    snapshot_seconds=60,
    read_seconds=0.05,
    command_poll_seconds=0.1,
    equity_change_percent=0.5,
    max_backoff_seconds=0.5,
)
_deal_ids = itertools.count(70_000_000)


class BridgeKilled(BaseException):
    """The bridge process dies here: nothing after this line of the runtime runs."""


class ScriptedBroker:
    """One broker account in memory, which the test changes between readings.

    A close removes the position, realizes its profit and leaves a fill tagged with the command's
    id in the history, as a broker's deal comment would carry it.
    """

    description = "scripted account"

    def __init__(self, *tickets: int, balance: str = "10000.00") -> None:
        self._lock = threading.Lock()
        self.balance = Decimal(balance)
        self.positions: dict[str, dict[str, Any]] = {}
        for ticket in tickets:
            self.open(ticket)
        self.fills: dict[str, dict[str, Any]] = {}
        self._unreported_deals: list[dict[str, Any]] = []
        self.read_failure: str | None = None
        self.reads = 0
        self.closes: list[tuple[CloseOrder, Sequence[str]]] = []
        self.settles: list[CloseOrder] = []
        self.die_after_sending = False
        self.after_close: Callable[[], None] | None = None
        self.connected = False
        self.threads: set[str] = set()

    def open(self, ticket: int, volume: str = "0.10", profit: str = "0.00") -> None:
        with self._lock:
            self.positions[str(ticket)] = {
                "ticket": ticket,
                "symbol": "EURUSD",
                "side": "buy",
                "volume": Decimal(volume),
                "open_price": Decimal("1.08500"),
                "current_price": Decimal("1.08600"),
                "profit": Decimal(profit),
                "opened_at": datetime.now(UTC) - timedelta(minutes=2),
            }

    def set_profit(self, ticket: int, profit: str) -> None:
        with self._lock:
            self.positions[str(ticket)]["profit"] = Decimal(profit)

    def connect(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.connected = True

    def disconnect(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.connected = False

    def read(self, now: datetime) -> AccountReading:
        with self._lock:
            self.threads.add(threading.current_thread().name)
            self.reads += 1
            if self.read_failure:
                raise ReadFailed(self.read_failure)
            equity = self.balance + sum(position["profit"] for position in self.positions.values())
            snapshot = {
                "taken_at": now,
                "balance": self.balance,
                "equity": equity,
                "currency": "USD",
                "positions": [dict(position) for position in self.positions.values()],
                "quotes": [{"symbol": "EURUSD", "bid": Decimal("1.08600"), "ask": Decimal("1.08610")}],
            }
            deals, self._unreported_deals = tuple(self._unreported_deals), []
        return AccountReading(snapshot, deals)

    def close(self, order: CloseOrder, earlier: Sequence[str]) -> CloseOutcome:
        with self._lock:
            self.closes.append((order, tuple(earlier)))
            for command_id in earlier:
                if command_id in self.fills:
                    return _executed(self.fills[command_id], "filled by an earlier order")
            position = self.positions.pop(order.ticket, None)
            if position is None:
                return CloseOutcome(OutcomeStatus.FAILED, f"no position {order.ticket}")
            self.balance += position["profit"]
            deal = {
                "ticket": position["ticket"],
                "deal_id": next(_deal_ids),
                "close_price": position["current_price"],
                "profit": position["profit"],
                "closed_at": datetime.now(UTC) - timedelta(seconds=1),
                "reason": "close_command",
            }
            self.fills[order.command_id] = deal
            self._unreported_deals.append(deal)
        if self.die_after_sending:
            raise BridgeKilled
        if self.after_close:
            self.after_close()
        return _executed(deal, "closed")

    def settle(self, order: CloseOrder) -> CloseOutcome:
        with self._lock:
            self.settles.append(order)
            if order.command_id in self.fills:
                return _executed(self.fills[order.command_id], "found filled after a restart")
            if order.ticket in self.positions:
                return CloseOutcome(OutcomeStatus.FAILED, "never sent: the position is still open")
            return CloseOutcome(OutcomeStatus.UNKNOWN, "the position is gone without a fill of this order")


def _executed(deal: dict[str, Any], detail: str) -> CloseOutcome:
    return CloseOutcome(OutcomeStatus.EXECUTED, detail, deal["close_price"], deal["profit"])


def bridge_file(tmp_path: Path, url: str, **timings: float) -> BridgeFile:
    return BridgeFile(
        path=tmp_path / "bridge.toml",
        url=url,
        timings=dataclasses.replace(FAST, **timings),
        journal_path=tmp_path / "journal.sqlite3",
        tables={},
    )


def binding(follower: Follower, broker: ScriptedBroker, secret: str | None = None) -> Binding:
    return Binding("scripted", broker, DeviceCredentials(follower.device_id, secret or follower.secret))


@contextlib.asynccontextmanager
async def running(file: BridgeFile, bindings: list[Binding], **options: Any) -> AsyncIterator[asyncio.Task]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_bridges(file, bindings, stop=stop, **options))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def total_syncs(follower: Follower) -> int:
    return (await follower.status())["total_syncs"]


async def syncs_reach(follower: Follower, count: int) -> int:
    async def reached() -> int:
        syncs = await total_syncs(follower)
        return syncs if syncs >= count else 0

    return await eventually(reached, f"{count} snapshots applied")


async def reads_advance(broker: ScriptedBroker, count: int) -> None:
    target = broker.reads + count

    async def advanced() -> bool:
        return broker.reads >= target

    await eventually(advanced, f"{count} more broker readings")


async def open_tickets(follower: Follower) -> set[str]:
    answer = await follower.owner.get("/api/v1/positions/open", account_id=follower.account_id)
    return {position["ticket"] for position in answer.json()["positions"]}


def messages(caplog, containing: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if containing in record.getMessage()]


@pytest.fixture(scope="module")
async def sqlite_server(tmp_path_factory) -> AsyncIterator[LiveServer]:
    """For the scenarios about the bridge, whatever the server stores its data in."""
    data = tmp_path_factory.mktemp("bridge-runtime")
    async with serve_live(make_settings(data, f"sqlite+aiosqlite:///{data / 'tradeguard.db'}")) as server:
        yield server


@pytest.fixture(autouse=True)
def bridge_logs(caplog):
    caplog.set_level(logging.INFO, logger="tradeguard.bridge")
    return caplog


async def critical_at_ten_percent(follower: Follower) -> None:
    response = await follower.owner.put(
        f"/api/v1/accounts/{follower.account_id}/guard-config",
        json={"drawdown_warning_pct": 5, "drawdown_critical_pct": 10},
    )
    assert response.status_code == 200, response.text


async def acknowledged(follower: Follower, status: str) -> dict[str, dict]:
    """The account's close commands the bridge acknowledged with this status, by ticket."""
    events = await follower.events(event_type="close_command")
    return {event["ticket"]: event for event in events if event["details"].get("acknowledged") == status}


async def test_snapshots_go_out_when_positions_or_equity_change_not_at_every_reading(sqlite_server, tmp_path):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)
    async with running(bridge_file(tmp_path, sqlite_server.url), [binding(follower, broker)]):
        await syncs_reach(follower, 1)
        broker.set_profit(1, "20.00")  # 0.2 % of equity: within the 0.5 % that counts as a change
        await reads_advance(broker, 10)
        unchanged = await total_syncs(follower)

        broker.open(2)
        await syncs_reach(follower, 2)
        opened = await open_tickets(follower)

        broker.set_profit(2, "-80.00")  # 0.8 %
        moved = await syncs_reach(follower, 3)

    assert unchanged == 1
    assert opened == {"1", "2"}
    assert moved == 3
    assert (await follower.status())["open_positions_count"] == 2


async def test_each_account_of_one_bridge_is_reported_by_its_own_loop_and_broker_thread(
    sqlite_server, tmp_path
):
    first, second = [await register_follower(sqlite_server.api) for _ in range(2)]
    first_broker, second_broker = ScriptedBroker(1), ScriptedBroker(2, 3)
    bindings = [
        Binding("first", first_broker, DeviceCredentials(first.device_id, first.secret)),
        Binding("second", second_broker, DeviceCredentials(second.device_id, second.secret)),
    ]

    async with running(bridge_file(tmp_path, sqlite_server.url), bindings):
        await syncs_reach(first, 1)
        await syncs_reach(second, 1)

    assert await open_tickets(first) == {"1"}
    assert await open_tickets(second) == {"2", "3"}
    assert len(first_broker.threads) == len(second_broker.threads) == 1
    assert first_broker.threads != second_broker.threads
    assert threading.current_thread().name not in first_broker.threads | second_broker.threads


async def test_a_snapshot_goes_out_at_the_cadence_when_nothing_changes(sqlite_server, tmp_path):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)
    file = bridge_file(tmp_path, sqlite_server.url, snapshot_seconds=0.2)

    async with running(file, [binding(follower, broker)]):
        syncs = await syncs_reach(follower, 3)

    assert syncs >= 3
    assert await open_tickets(follower) == {"1"}


async def test_a_failed_read_sends_nothing_and_says_why_once(sqlite_server, tmp_path, bridge_logs):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)
    file = bridge_file(tmp_path, sqlite_server.url, snapshot_seconds=0.2)

    async with running(file, [binding(follower, broker)]):
        await syncs_reach(follower, 1)
        broker.read_failure = "terminal not connected to the trade server"
        await reads_advance(broker, 2)
        before = await total_syncs(follower)
        await reads_advance(broker, 12)  # three cadences' worth
        after = await total_syncs(follower)
        broker.read_failure = None
        resumed = await syncs_reach(follower, after + 1)

    assert after == before
    assert resumed > after
    assert len(messages(bridge_logs, "terminal not connected to the trade server")) == 1
    assert len(messages(bridge_logs, "broker reads again")) == 1


async def test_a_drawdown_breach_closes_each_position_once_and_the_closes_are_acknowledged(
    database_url, redis_url, tmp_path
):
    async with serve_live(make_settings(tmp_path, database_url, redis_url)) as server:
        follower = await register_follower(server.api)
        await critical_at_ten_percent(follower)
        broker = ScriptedBroker(1, 2, 3)
        file = bridge_file(tmp_path, server.url)

        async with running(file, [binding(follower, broker)]):
            await syncs_reach(follower, 1)
            for ticket in (1, 2, 3):
                broker.set_profit(ticket, "-400.00")  # equity 8,800: 12 % below the peak
            executed = await eventually(
                lambda: _all_three(acknowledged(follower, "executed")), "three closes acknowledged"
            )
            await eventually(lambda: _closed_on_broker(follower), "the closes confirmed by a snapshot")
            await reads_advance(broker, 5)

        closed = await follower.events(event_type="position_closed")

    closed_commands = Counter(order.command_id for order, _ in broker.closes)
    assert sorted(order.ticket for order, _ in broker.closes) == ["1", "2", "3"]
    assert set(closed_commands.values()) == {1}
    assert {event["details"]["command_id"] for event in executed.values()} == set(closed_commands)
    assert broker.settles == []
    assert {event["ticket"] for event in closed} == {"1", "2", "3"}
    assert {event["details"]["pnl_source"] for event in closed} == {"realized"}
    assert {Decimal(event["details"]["net_profit"]) for event in closed} == {Decimal("-400.00")}
    journal = Journal(file.journal_path)
    try:
        entries = [journal.entry("scripted", command_id) for command_id in closed_commands]
    finally:
        journal.close()
    assert all(entry.acknowledged_at is not None for entry in entries)
    assert {entry.outcome.status for entry in entries} == {OutcomeStatus.EXECUTED}


async def _all_three(events: Awaitable[dict]) -> dict:
    found = await events
    return found if len(found) == 3 else {}


async def _closed_on_broker(follower: Follower) -> bool:
    return len(await follower.events(event_type="position_closed")) == 3


async def test_a_command_begun_before_a_kill_is_settled_on_restart_and_never_sent_again(
    sqlite_server, tmp_path
):
    follower = await register_follower(sqlite_server.api)
    await critical_at_ten_percent(follower)
    broker = ScriptedBroker(1)
    broker.die_after_sending = True
    file = bridge_file(tmp_path, sqlite_server.url)

    with pytest.raises(BridgeKilled):
        async with running(file, [binding(follower, broker)]):
            await syncs_reach(follower, 1)
            broker.set_profit(1, "-1500.00")
            await eventually(lambda: broker.closes, "the close sent")
    [(order, earlier)] = broker.closes
    journal = Journal(file.journal_path)
    try:
        left = journal.entry("scripted", order.command_id)
    finally:
        journal.close()

    broker.die_after_sending = False
    async with running(file, [binding(follower, broker)]):
        executed = await eventually(lambda: acknowledged(follower, "executed"), "the command acknowledged")

    assert earlier == ()
    assert left.outcome is None and left.acknowledged_at is None
    assert [settled.command_id for settled in broker.settles] == [order.command_id]
    assert len(broker.closes) == 1
    assert executed["1"]["details"]["command_id"] == order.command_id


async def test_an_acknowledgement_lost_with_tradeguard_is_sent_again_from_the_journal_not_closed_again(
    sqlite_server, tmp_path, bridge_logs
):
    follower = await register_follower(sqlite_server.api)
    await critical_at_ten_percent(follower)
    broker = ScriptedBroker(1)
    proxy = TcpProxy("127.0.0.1", urlsplit(sqlite_server.url).port)
    await proxy.start()
    loop = asyncio.get_running_loop()
    broker.after_close = lambda: asyncio.run_coroutine_threadsafe(proxy.cut(), loop).result(5)
    file = bridge_file(tmp_path, f"http://127.0.0.1:{proxy.port}")

    async with running(file, [binding(follower, broker)]):
        await syncs_reach(follower, 1)
        broker.set_profit(1, "-1500.00")
        await eventually(lambda: messages(bridge_logs, "tradeguard unreachable"), "the acknowledgement lost")
        unacknowledged = await acknowledged(follower, "executed")
        await reads_advance(broker, 5)
        await proxy.start()
        executed = await eventually(lambda: acknowledged(follower, "executed"), "the command acknowledged")
    await proxy.cut()

    [(order, _)] = broker.closes
    assert unacknowledged == {}
    assert executed["1"]["details"]["command_id"] == order.command_id
    assert broker.settles == []


async def test_tradeguard_away_is_logged_once_and_the_bridge_resumes_by_itself(
    sqlite_server, tmp_path, bridge_logs
):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)
    proxy = TcpProxy("127.0.0.1", urlsplit(sqlite_server.url).port)
    await proxy.start()
    file = bridge_file(tmp_path, f"http://127.0.0.1:{proxy.port}")

    async with running(file, [binding(follower, broker)]):
        await syncs_reach(follower, 1)
        await proxy.cut()
        await eventually(lambda: messages(bridge_logs, "tradeguard unreachable"), "outage noticed")
        broker.open(2)
        await reads_advance(broker, 20)
        during = await open_tickets(follower)
        await proxy.start()
        await syncs_reach(follower, 2)
        after = await open_tickets(follower)
    await proxy.cut()

    assert during == {"1"}
    assert after == {"1", "2"}
    assert len(messages(bridge_logs, "tradeguard unreachable")) == 1
    assert len(messages(bridge_logs, "tradeguard reachable again after")) == 1


async def test_a_503_is_waited_out_for_as_long_as_its_retry_after_says_while_the_broker_is_still_read(
    receiver, tmp_path, bridge_logs
):
    database_away = Reply(
        503, b'{"detail": "the database is unreachable; retry shortly"}', {"Retry-After": "3600"}
    )
    receiver.script.append(database_away)
    receiver.default = Reply(body=b'{"commands": []}')
    broker = ScriptedBroker(1)
    device = DeviceCredentials("dev_0123456789abcdef", "s" * 43)

    async with running(bridge_file(tmp_path, receiver.url), [Binding("scripted", broker, device)]):
        await eventually(lambda: messages(bridge_logs, "tradeguard unreachable"), "the 503 noticed")
        await reads_advance(broker, 20)  # twice the longest backoff

    [away] = messages(bridge_logs, "tradeguard unreachable")
    assert "503: the database is unreachable" in away
    assert [request.path for request in receiver.requests] == ["/api/v1/ingest/commands"]


async def test_a_bridge_clock_400_s_ahead_is_corrected_from_the_servers_date(
    sqlite_server, tmp_path, bridge_logs
):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)

    def ahead() -> float:
        return time.time() + 400

    async with running(bridge_file(tmp_path, sqlite_server.url), [binding(follower, broker)], clock=ahead):
        await syncs_reach(follower, 1)
        broker.open(2)
        await syncs_reach(follower, 2)
        last_sync = datetime.fromisoformat((await follower.status())["last_sync_at"])

    assert abs((last_sync - datetime.now(UTC)).total_seconds()) < 60
    [correction] = messages(bridge_logs, "correcting it by")
    # The Date header has whole seconds: the measured offset is within a second of the true one.
    assert re.search(r"clock is \+40[01] s off", correction), correction


async def test_a_wrong_secret_is_refused_naming_the_device(sqlite_server, tmp_path):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)

    with pytest.raises(BridgeRefused) as refused:
        await run_bridges(
            bridge_file(tmp_path, sqlite_server.url), [binding(follower, broker, secret="w" * 43)]
        )

    assert follower.device_id in str(refused.value)
    assert "signature" in str(refused.value).lower()
    assert broker.connected is False
    assert await total_syncs(follower) == 0


async def test_a_device_revoked_while_running_stops_the_bridge(sqlite_server, tmp_path):
    follower = await register_follower(sqlite_server.api)
    broker = ScriptedBroker(1)

    with pytest.raises(BridgeRefused) as refused:
        async with running(bridge_file(tmp_path, sqlite_server.url), [binding(follower, broker)]) as bridge:
            await syncs_reach(follower, 1)
            path = f"/api/v1/accounts/{follower.account_id}/devices/{follower.device_id}"
            revoked = await follower.owner.api.http.delete(path, headers=follower.owner.headers)
            await asyncio.wait_for(bridge, 10)

    assert revoked.status_code == 204
    assert "no longer accepts" in str(refused.value)
    assert follower.device_id in str(refused.value)


def test_the_bridge_command_says_what_is_wrong_with_its_config_in_one_line(tmp_path):
    config = tmp_path / "bridge.toml"
    config.write_text('[tradeguard]\nurl = "ftp://tradeguard.example"\n', encoding="utf-8")

    result = CliRunner().invoke(app, ["bridge", "ccxt", "--config", str(config)])

    assert result.exit_code == 1
    assert "tradeguard.url must start with http:// or https://" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_serving_does_not_import_the_bridge_runtime():
    probe = "import sys, tradeguard.cli; print(sorted(m for m in sys.modules if m.startswith('tradeguard.bridges')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout

    assert "tradeguard.bridges.cli" in loaded
    assert "tradeguard.bridges.runtime" not in loaded
    assert "tradeguard.bridges.journal" not in loaded


def order(command_id: str, ticket: str = "50000001") -> CloseOrder:
    return CloseOrder(command_id, ticket, "EURUSD", Decimal("0.50"))


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_the_journal_keeps_each_step_of_a_command_across_reopening(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    journal.begin("demo", order("c1"), NOW)
    begun = journal.entry("demo", "c1")
    outcome = CloseOutcome(OutcomeStatus.EXECUTED, "closed", Decimal("1.08410"), Decimal("-45.00"))
    journal.record("demo", "c1", outcome, NOW + timedelta(seconds=1))
    journal.close()

    reopened = Journal(path)
    recorded = reopened.entry("demo", "c1")
    reopened.mark_acknowledged("demo", "c1", NOW + timedelta(seconds=2))
    acknowledged = reopened.entry("demo", "c1")
    reopened.close()
    elsewhere = Journal(path)
    other_binding = elsewhere.entry("other binding", "c1")
    elsewhere.close()

    assert begun.order == order("c1") and begun.began_at == NOW
    assert begun.outcome is None and begun.acknowledged_at is None
    assert recorded.outcome == outcome
    assert str(recorded.outcome.profit) == "-45.00"
    assert recorded.finished_at == NOW + timedelta(seconds=1)
    assert acknowledged.acknowledged_at == NOW + timedelta(seconds=2)
    assert other_binding is None


def test_the_journal_names_the_commands_of_a_ticket_whose_outcome_is_not_known(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    for command_id in ("never-recorded", "unknown", "executed", "failed"):
        journal.begin("demo", order(command_id), NOW)
    journal.begin("demo", order("other-ticket", ticket="7"), NOW)
    journal.begin("other binding", order("elsewhere"), NOW)
    for command_id, status in (("unknown", "unknown"), ("executed", "executed"), ("failed", "failed")):
        journal.record("demo", command_id, CloseOutcome(OutcomeStatus(status), status), NOW)

    assert journal.unsettled("demo", "50000001") == ["never-recorded", "unknown"]
    assert journal.unsettled("demo", "7") == ["other-ticket"]


def test_the_journal_forgets_acknowledged_commands_after_a_week_only(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    for command_id in ("old-acknowledged", "recent-acknowledged", "old-unacknowledged"):
        journal.begin("demo", order(command_id), NOW - timedelta(days=9))
        journal.record("demo", command_id, CloseOutcome(OutcomeStatus.EXECUTED, "closed"), NOW)
    journal.mark_acknowledged("demo", "old-acknowledged", NOW - timedelta(days=8))
    journal.mark_acknowledged("demo", "recent-acknowledged", NOW - timedelta(days=6))

    forgotten = journal.prune(NOW)

    assert forgotten == 1
    assert journal.entry("demo", "old-acknowledged") is None
    assert journal.entry("demo", "recent-acknowledged") is not None
    assert journal.entry("demo", "old-unacknowledged") is not None
