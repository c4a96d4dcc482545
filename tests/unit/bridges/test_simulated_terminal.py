"""The simulated broker whose account lives in a stand-in MT5 terminal, in process.

The simulation's decisions (fills, slippage, stops) land in the terminal as positions and deals;
a close the MT5 broker makes there through `order_send`, as a bridge would, is taken back in.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.markets import quiet_market
from tradeguard.bridges.broker import CloseOrder, OutcomeStatus
from tradeguard.bridges.mt5 import standin as mt5
from tradeguard.bridges.mt5.settings import Mt5Settings
from tradeguard.bridges.mt5.terminal_broker import TerminalBroker
from tradeguard.bridges.simulated_terminal import TerminalHeldBroker, create_terminal
from tradeguard.bridges.simulator.broker import COPIER_MAGIC, Fill, Order
from tradeguard.bridges.simulator.clock import BrokerClock
from tradeguard.domain.model import CloseReason, Side

LOGIN = 50001
NOW = datetime.now(UTC)


@pytest.fixture
def market():
    return quiet_market(EURUSD="1.08500", GBPUSD="1.27000")


@pytest.fixture
def terminal(tmp_path, market):
    terminal = create_terminal(
        tmp_path / "terminal.sqlite3",
        login=LOGIN,
        server="DemoBroker-Live",
        name="Follower",
        balance=Decimal(10_000),
        server_utc_offset_hours=2,
        specs=market.specs,
    )
    yield terminal
    mt5.shutdown()
    terminal.close()


@pytest.fixture
def broker(market, terminal):
    return TerminalHeldBroker(market, random.Random(0), terminal)


def test_a_slipped_fill_opens_in_the_terminal_at_its_price_with_the_orders_stops(broker, terminal):
    order = Order(
        "sim-1-00001",
        "EURUSD",
        Side.BUY,
        Decimal("0.40"),
        Decimal("1.08500"),
        stop_loss=Decimal("1.08300"),
        take_profit=Decimal("1.08900"),
    )
    broker.place(order, Fill.SLIPPED, due_step=1)
    [(position, _, _)] = broker.fill_due_orders(1, NOW)

    [opening] = [deal for deal in terminal.deals() if deal.position_id == position.ticket]
    assert opening.entry == mt5.DEAL_ENTRY_IN and opening.comment == "sim-1-00001"
    assert Decimal(repr(opening.price)) == position.open_price > Decimal("1.08500")
    assert terminal.positions()[position.ticket]["volume"] == Decimal("0.40")
    assert broker.positions == {str(position.ticket): position}
    assert (position.stop_loss, position.take_profit) == (Decimal("1.08300"), Decimal("1.08900"))


def test_a_stop_crossed_through_a_gap_is_a_deal_with_its_reason_at_the_market_price(broker, market, terminal):
    order = Order(
        "t-1", "GBPUSD", Side.BUY, Decimal("1.00"), Decimal("1.27000"), stop_loss=Decimal("1.26800")
    )
    broker.place(order, Fill.CLEAN, due_step=1)
    [(position, _, _)] = broker.fill_due_orders(1, NOW)
    market.set_bid("GBPUSD", Decimal("1.26750"))

    [closed] = broker.trigger_stops(NOW)

    assert (closed.reason, closed.close_price, closed.profit) == (
        CloseReason.STOP_LOSS,
        Decimal("1.26750"),
        Decimal("-250.00"),
    )
    [deal] = [deal for deal in terminal.deals() if deal.entry == mt5.DEAL_ENTRY_OUT]
    assert (deal.position_id, deal.reason, deal.ticket) == (
        position.ticket,
        mt5.DEAL_REASON_SL,
        closed.deal_id,
    )
    assert broker.positions == {} and terminal.positions() == {}
    assert broker.balance == terminal.totals()["balance"] == Decimal("9750.00")
    assert broker.equity() == broker.balance


def test_a_close_sent_with_order_send_is_taken_in_as_a_close_command(broker, market, terminal):
    position = broker.open_by_hand("EURUSD", Side.SELL, Decimal("0.20"), NOW)
    market.set_bid("EURUSD", Decimal("1.08400"))
    assert broker.trigger_stops(NOW) == []
    assert broker.profit(position) == Decimal("20.00")

    bridge_side = TerminalBroker(
        mt5, Mt5Settings(login=LOGIN, path=str(terminal.path), server_utc_offset_seconds=7200)
    )
    bridge_side.connect()
    outcome = bridge_side.close(CloseOrder("cmd-1", str(position.ticket), "EURUSD", Decimal("0.20")), ())
    assert outcome.status is OutcomeStatus.EXECUTED

    [closed] = broker.trigger_stops(NOW)
    assert (closed.reason, closed.ticket, closed.profit) == (
        CloseReason.CLOSE_COMMAND,
        position.ticket,
        outcome.profit,
    )
    assert broker.positions == {}
    assert broker.balance == Decimal("10020.00") == terminal.totals()["balance"]
    assert broker.history == [closed]


def test_the_bridge_reports_the_copiers_magic_and_trade_id_and_a_trade_by_hand_as_magic_0(broker, terminal):
    broker.place(
        Order("sim-1-00007", "EURUSD", Side.BUY, Decimal("0.10"), Decimal("1.08500")), Fill.CLEAN, due_step=1
    )
    [(copied, _, _)] = broker.fill_due_orders(1, NOW)
    by_hand = broker.open_by_hand("GBPUSD", Side.SELL, Decimal("0.20"), NOW)
    bridge_side = TerminalBroker(
        mt5, Mt5Settings(login=LOGIN, path=str(terminal.path), server_utc_offset_seconds=7200)
    )
    bridge_side.connect()

    sent = {item["ticket"]: item for item in bridge_side.read(datetime.now(UTC)).snapshot["positions"]}

    assert (sent[copied.ticket]["magic"], sent[copied.ticket]["comment"]) == (COPIER_MAGIC, "sim-1-00007")
    assert (sent[by_hand.ticket]["magic"], sent[by_hand.ticket]["comment"]) == (0, "")


def test_the_real_time_clock_follows_the_wall_clock_and_never_repeats_itself():
    wall = [NOW]
    clock = BrokerClock.real_time(wall=lambda: wall[0])

    first, repeated = clock.tick(), clock.tick()
    wall[0] = NOW + timedelta(seconds=7)
    later = clock.tick()

    assert first == NOW + timedelta(milliseconds=1)
    assert repeated == first + timedelta(milliseconds=1)
    assert later == NOW + timedelta(seconds=7)
