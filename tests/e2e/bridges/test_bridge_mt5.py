"""`tradeguard bridge mt5` as its own process, against a served tradeguard and the stand-in terminal.

The bridge imports `tradeguard.bridges.mt5.standin` for `MetaTrader5`; this process drives the same
terminal file as the broker, the market and a trade copier would, and checks what reached the
terminal (every order_send request), what tradeguard recorded (command states, the audit) and
what the bridge logged. One bridge run per backend carries the scenarios one after another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from tests.support.apps import make_settings, serve_live
from tests.support.bridging import Follower, register_follower
from tests.support.builders import Caller, sign_up
from tests.support.servers import TRADEGUARD
from tests.support.services import embedded_and_production
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from tradeguard.bridges.mt5 import standin as mt5
from tradeguard.bridges.mt5.standin_terminal import StandinTerminal
from tradeguard.bridges.mt5.terminal_broker import command_comment
from tradeguard.store.models import CloseCommand

STANDIN = "tradeguard.bridges.mt5.standin"
LOGIN = 5012345
SECRET_VARIABLE = "TG_MT5_TEST_DEVICE_SECRET"
PASSWORD_VARIABLE = "TG_MT5_TEST_PASSWORD"
PASSWORD = "broker-password"
BASE_BID, BASE_ASK = "1.08500", "1.08510"


@dataclass
class Bridge:
    """One `tradeguard bridge mt5` process at a time over one configuration, journal and log."""

    config: Path
    log: Path
    secret: str
    process: subprocess.Popen | None = None

    def start(self) -> None:
        environment = {**os.environ, SECRET_VARIABLE: self.secret, PASSWORD_VARIABLE: PASSWORD}
        command = [*TRADEGUARD, "bridge", "mt5", "--config", str(self.config), "--mt5-module", STANDIN]
        with open(self.log.with_suffix(".stderr"), "ab") as stderr:
            self.process = subprocess.Popen(
                [*command, "--log-file", str(self.log)],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def lines(self, containing: str) -> list[str]:
        text = self.log.read_text(encoding="utf-8") if self.log.exists() else ""
        return [line for line in text.splitlines() if containing in line]


def write_config(tmp_path: Path, url: str, follower: Follower, terminal: StandinTerminal) -> Path:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f"""
[tradeguard]
url = "{url}"
device_id = "{follower.device_id}"
secret_env = "{SECRET_VARIABLE}"

[bridge]
snapshot_seconds = 1
read_seconds = 0.1
command_poll_seconds = 0.2
max_backoff_seconds = 1
journal = "journal.sqlite3"

[mt5]
login = {LOGIN}
password_env = "{PASSWORD_VARIABLE}"
path = '{terminal.path}'
watch = ["EURUSD"]
""",
        encoding="utf-8",
    )
    return config


@contextlib.contextmanager
def bridge_running(
    tmp_path: Path, url: str, follower: Follower, terminal: StandinTerminal
) -> Iterator[Bridge]:
    bridge = Bridge(write_config(tmp_path, url, follower, terminal), tmp_path / "bridge.log", follower.secret)
    bridge.start()
    try:
        yield bridge
    finally:
        if bridge.process.poll() is None:
            bridge.kill()


def new_terminal(tmp_path: Path) -> StandinTerminal:
    terminal = StandinTerminal.create(tmp_path / "terminal.sqlite3", server_utc_offset_hours=2)
    terminal.add_account(LOGIN, password=PASSWORD, server="Standin-Demo", balance="10000")
    terminal.add_symbol("EURUSD", bid=BASE_BID, ask=BASE_ASK)
    return terminal


async def guarded_follower(api, owner: Caller | None = None) -> Follower:
    follower = await register_follower(api, owner or await sign_up(api))
    response = await follower.owner.put(
        f"/api/v1/accounts/{follower.account_id}/guard-config",
        json={"drawdown_warning_pct": 5, "drawdown_critical_pct": 10, "stale_after_seconds": 5},
    )
    assert response.status_code == 200, response.text
    return follower


async def open_tickets(follower: Follower) -> dict[str, dict]:
    answer = await follower.owner.get("/api/v1/positions/open", account_id=follower.account_id)
    return {position["ticket"]: position for position in answer.json()["positions"]}


async def commands_of(api, follower: Follower) -> dict[str, CloseCommand]:
    """ticket → its close command, as tradeguard stores it."""
    async with api.session() as session:
        query = select(CloseCommand).where(CloseCommand.account_id == follower.account_id)
        return {command.ticket: command for command in (await session.scalars(query)).all()}


async def command_confirmed(api, follower: Follower, ticket: int) -> CloseCommand | None:
    command = (await commands_of(api, follower)).get(str(ticket))
    return command if command is not None and command.confirmed_at is not None else None


async def command_events(follower: Follower, command_id: str) -> list[dict]:
    events = await follower.events(event_type="close_command")
    return [event for event in events if event["details"].get("command_id") == command_id]


def requests_for(terminal: StandinTerminal, command_id: str) -> list:
    return [
        sent for sent in terminal.order_requests() if sent.request["comment"] == command_comment(command_id)
    ]


async def breach(terminal: StandinTerminal, **prices: str) -> None:
    terminal.quote("EURUSD", **prices)


async def rearm(follower: Follower) -> None:
    response = await follower.owner.post(
        f"/api/v1/accounts/{follower.account_id}/guard/rearm", json={"reset_peak": True}
    )
    assert response.status_code == 200, response.text


async def scenario_trades_matched_and_a_manual_trade_unexpected(
    follower: Follower, terminal: StandinTerminal
):
    copied = terminal.open_position("EURUSD", "buy", "1.00", magic=770001, comment="copier")
    manual = terminal.open_position("EURUSD", "sell", "2.00", reason=mt5.POSITION_REASON_CLIENT)
    await follower.expect("T-1", volume="1.00", entry_price=BASE_ASK, opened_at=datetime.now(UTC).isoformat())

    async def reconciled() -> dict | None:
        status = await follower.status()
        return status if status["matched_positions"] == 1 and status["divergences_detected"] == 1 else None

    await eventually(reconciled, "the copied trade matched and the manual one unexpected")
    divergences = await follower.events(event_type="divergence")
    assert {(event["ticket"], event["reason"]) for event in divergences} == {
        (str(manual), "unexpected_on_broker")
    }
    held = await open_tickets(follower)
    assert set(held) == {str(copied), str(manual)}
    # Opened a moment ago in UTC, though the terminal stamps them two hours later.
    opened = datetime.fromisoformat(held[str(copied)]["entry_time"])
    assert abs(opened - datetime.now(UTC)) < timedelta(seconds=30)
    assert held[str(copied)]["matched_with_bot"] is True and held[str(manual)]["matched_with_bot"] is False
    assert Decimal(str(held[str(manual)]["volume"])) == Decimal("2.00")
    # The terminal's magic and comment, as the bridge sent them; a trade by hand has magic 0.
    assert (held[str(copied)]["magic"], held[str(copied)]["comment"]) == (770001, "copier")
    assert (held[str(manual)]["magic"], held[str(manual)]["comment"]) == (0, "")
    return copied, manual


async def scenario_drawdown_closes_each_position_once_through_a_requote(
    api, follower: Follower, terminal: StandinTerminal, bridge: Bridge, tickets: tuple[int, int]
):
    terminal.script_requote()
    # The buy of 1.00 gains (1.09800 - 1.08510) × 100,000 = 1,290, the sell of 2.00 loses
    # (1.09810 - 1.08500) × 200,000 = 2,620: 13 % below the peak of 9,970, beyond the 10 % that closes.
    await breach(terminal, bid="1.09800", ask="1.09810")
    for ticket in tickets:
        await eventually(
            lambda ticket=ticket: command_confirmed(api, follower, ticket), f"ticket {ticket} closed"
        )
    commands = await commands_of(api, follower)
    sent = terminal.order_requests()
    assert [request.retcode for request in sent].count(mt5.TRADE_RETCODE_REQUOTE) == 1
    assert sorted(request.retcode for request in sent) == [10004, 10009, 10009]
    by_ticket = {request.request["position"]: request for request in sent if request.retcode == 10009}
    copied, manual = tickets
    expected = {
        copied: {"type": mt5.ORDER_TYPE_SELL, "volume": 1.0, "price": 1.098},
        manual: {"type": mt5.ORDER_TYPE_BUY, "volume": 2.0, "price": 1.0981},
    }
    for ticket, fields in expected.items():
        command = commands[str(ticket)]
        assert by_ticket[ticket].request == {
            "action": mt5.TRADE_ACTION_DEAL,
            "position": ticket,
            "symbol": "EURUSD",
            "deviation": 20,
            "type_filling": mt5.ORDER_FILLING_FOK,
            "type_time": mt5.ORDER_TIME_GTC,
            "magic": 20251125,
            "comment": command_comment(command.id),
            **fields,
        }
        assert len(requests_for(terminal, command.id)) == (2 if ticket == sent[0].request["position"] else 1)
        assert command.state == "executed" and command.cause == "drawdown"
    assert terminal.positions() == {}
    closed = {event["ticket"]: event for event in await follower.events(event_type="position_closed")}
    # The closing deals rode along: the realized P&L, not the last floating one.
    assert closed[str(copied)]["details"]["pnl_source"] == "realized"
    assert Decimal(str(closed[str(copied)]["details"]["net_profit"])) == Decimal("1290.00")
    assert Decimal(str(closed[str(manual)]["details"]["net_profit"])) == Decimal("-2620.00")
    assert bridge.lines("answered 10004 Requote")
    await breach(terminal, bid=BASE_BID, ask=BASE_ASK)
    await rearm(follower)


async def scenario_the_terminal_lost_during_the_send_is_settled_by_the_next_snapshot(
    api, follower: Follower, terminal: StandinTerminal, bridge: Bridge
):
    ticket = terminal.open_position("EURUSD", "buy", "1.00")
    await eventually(lambda: open_tickets(follower), "the position reported")
    terminal.script_terminal_lost_after_execution()
    await breach(terminal, bid="1.06900", ask="1.06910")
    command = await eventually(
        lambda: _command_in_state(api, follower, ticket, "unknown"), "the close acknowledged unknown"
    )
    assert ticket not in terminal.positions()
    assert bridge.lines("-10004 No IPC connection")
    terminal.start()
    confirmed = await eventually(
        lambda: command_confirmed(api, follower, ticket), "the next snapshot settles it"
    )
    assert confirmed.state == "executed"
    [sent] = requests_for(terminal, command.id)
    assert sent.retcode is None
    acknowledged = [
        event["details"].get("acknowledged") for event in await command_events(follower, command.id)
    ]
    assert [status for status in acknowledged if status] == ["unknown"]
    [closed] = [
        event
        for event in await follower.events(event_type="position_closed")
        if event["ticket"] == str(ticket)
    ]
    assert closed["reason"] == "drawdown"
    await breach(terminal, bid=BASE_BID, ask=BASE_ASK)
    await rearm(follower)


async def _command_in_state(api, follower: Follower, ticket: int, state: str) -> CloseCommand | None:
    command = (await commands_of(api, follower)).get(str(ticket))
    if command is None:
        return None
    unknown = state == "unknown" and command.outcome_unknown
    return command if unknown or command.state == state else None


async def scenario_a_bridge_killed_mid_command_settles_on_restart_without_a_second_order(
    api, follower: Follower, terminal: StandinTerminal, bridge: Bridge
):
    ticket = terminal.open_position("EURUSD", "buy", "1.00")
    await eventually(lambda: open_tickets(follower), "the position reported")
    terminal.script_hang_after_execution()
    await breach(terminal, bid="1.06900", ask="1.06910")
    await eventually(lambda: ticket not in terminal.positions(), "the close executed in the terminal")
    bridge.kill()
    command = (await commands_of(api, follower))[str(ticket)]
    assert command.confirmed_at is None and command.state == "sent"
    bridge.start()
    confirmed = await eventually(
        lambda: command_confirmed(api, follower, ticket), "settled after the restart"
    )
    assert confirmed.state == "executed"
    assert len(requests_for(terminal, command.id)) == 1
    assert bridge.lines(f"command {command.id} for ticket {ticket} may have reached the broker unrecorded")
    assert bridge.lines("found after a restart: the command's order was executed")
    await breach(terminal, bid=BASE_BID, ask=BASE_ASK)
    await rearm(follower)


async def scenario_a_disconnected_terminal_sends_nothing_and_the_feed_goes_stale(
    follower: Follower, terminal: StandinTerminal, bridge: Bridge
):
    terminal.disconnect()
    syncs = (await follower.status())["total_syncs"]

    async def stale() -> list[dict]:
        alerts = await follower.owner.get("/api/v1/alerts", account_id=follower.account_id, kind="stale_feed")
        return alerts.json()["alerts"]

    await eventually(stale, "a stale-feed alert", timeout=20)
    assert (await follower.status())["total_syncs"] == syncs
    # The bridge writes its log from its own process: the line may land just after the alert.
    await eventually(lambda: bridge.lines("not connected to the trade server"), "the bridge saying why")
    terminal.reconnect()
    await eventually(lambda: _syncs_beyond(follower, syncs), "snapshots again once the terminal is back")


async def _syncs_beyond(follower: Follower, count: int) -> bool:
    return (await follower.status())["total_syncs"] > count


@embedded_and_production
async def test_an_mt5_bridge_reconciles_closes_once_and_survives_its_failures(
    database_url, redis_url, tmp_path
):
    settings = make_settings(
        tmp_path, database_url, redis_url, run_worker_in_api=True, sweep_interval_seconds=0.25
    )
    terminal = new_terminal(tmp_path)
    async with serve_live(settings) as server:
        follower = await guarded_follower(server.api)
        with bridge_running(tmp_path, server.url, follower, terminal) as bridge:
            tickets = await scenario_trades_matched_and_a_manual_trade_unexpected(follower, terminal)
            assert bridge.lines("server time is UTC+2:00, derived from the ticks")
            await scenario_drawdown_closes_each_position_once_through_a_requote(
                server.api, follower, terminal, bridge, tickets
            )
            await scenario_the_terminal_lost_during_the_send_is_settled_by_the_next_snapshot(
                server.api, follower, terminal, bridge
            )
            await scenario_a_bridge_killed_mid_command_settles_on_restart_without_a_second_order(
                server.api, follower, terminal, bridge
            )
            await scenario_a_disconnected_terminal_sends_nothing_and_the_feed_goes_stale(
                follower, terminal, bridge
            )
            assert bridge.stop() == 0
        assert not bridge.lines(follower.secret) and not bridge.lines(PASSWORD)
    terminal.close()


async def test_tradeguard_away_for_20_seconds_the_bridge_recovers_by_itself(tmp_path):
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}")
    terminal = new_terminal(tmp_path)
    async with serve_live(settings) as server:
        proxy = TcpProxy("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        await proxy.start()
        follower = await guarded_follower(server.api)
        ticket = terminal.open_position("EURUSD", "buy", "0.10")
        with bridge_running(tmp_path, f"http://127.0.0.1:{proxy.port}", follower, terminal) as bridge:
            await eventually(lambda: open_tickets(follower), "the position reported")
            await proxy.cut()
            await eventually(lambda: bridge.lines("tradeguard unreachable"), "the bridge noticing")
            deal = terminal.close_position(ticket, reason=mt5.DEAL_REASON_SL, price="1.08300")
            syncs = (await follower.status())["total_syncs"]
            await asyncio.sleep(20)
            assert (await follower.status())["total_syncs"] == syncs
            await proxy.start()
            await eventually(
                lambda: bridge.lines("tradeguard reachable again"), "the bridge back", timeout=15
            )
            [closed] = await eventually(
                lambda: follower.events(event_type="closed_on_broker"), "the close the outage hid"
            )
            assert bridge.process.poll() is None
            assert bridge.stop() == 0
        await proxy.cut()
    assert closed["ticket"] == str(ticket)
    assert closed["details"]["pnl_source"] == "realized"
    assert closed["reason"] == "stop_loss"
    # (1.08300 - 1.08510) × 0.10 × 100,000: the deal found during the outage, sent after it.
    assert Decimal(str(closed["details"]["net_profit"])) == Decimal("-21.00")
    assert [item["deal_id"] for item in closed["details"]["deals"]] == [str(deal)]
    assert len(bridge.lines("tradeguard unreachable")) == 1
    terminal.close()
