"""The MetaTrader5 stand-in answers as the package's documentation says the package does.

Each test names the documented fact it relies on; the bridge's tests only mean something while
these hold.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.support.mt5_terminals import LOGIN, PASSWORD, SERVER, two_symbol_terminal
from tradeguard.bridges.mt5 import standin as mt5


@pytest.fixture
def terminal(tmp_path):
    terminal = two_symbol_terminal(tmp_path)
    assert mt5.initialize(str(terminal.path), login=LOGIN, password=PASSWORD, server=SERVER)
    yield terminal
    mt5.shutdown()
    terminal.close()


def close_request(ticket: int, **fields) -> dict:
    return {
        "action": mt5.TRADE_ACTION_DEAL,
        "position": ticket,
        "symbol": "EURUSD",
        "volume": 0.5,
        "type": mt5.ORDER_TYPE_SELL,
        "price": 1.085,
        "deviation": 20,
        "type_filling": mt5.ORDER_FILLING_FOK,
        "type_time": mt5.ORDER_TIME_GTC,
        "magic": 20251125,
        "comment": "tg close 0123456789abcdef",
        **fields,
    }


def test_the_documented_constant_values():
    assert (mt5.TRADE_ACTION_DEAL, mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL) == (1, 0, 1)
    assert (mt5.POSITION_TYPE_BUY, mt5.POSITION_TYPE_SELL) == (0, 1)
    assert (mt5.ORDER_FILLING_FOK, mt5.ORDER_FILLING_IOC, mt5.ORDER_FILLING_RETURN) == (0, 1, 2)
    assert (mt5.SYMBOL_FILLING_FOK, mt5.SYMBOL_FILLING_IOC) == (1, 2)
    assert (mt5.DEAL_ENTRY_IN, mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_INOUT, mt5.DEAL_ENTRY_OUT_BY) == (
        0,
        1,
        2,
        3,
    )
    assert (mt5.DEAL_REASON_CLIENT, mt5.DEAL_REASON_EXPERT, mt5.DEAL_REASON_SL, mt5.DEAL_REASON_SO) == (
        0,
        3,
        4,
        6,
    )
    assert (mt5.TRADE_RETCODE_REQUOTE, mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_DONE_PARTIAL) == (
        10004,
        10009,
        10010,
    )
    assert (mt5.TRADE_RETCODE_TIMEOUT, mt5.TRADE_RETCODE_INVALID_VOLUME, mt5.TRADE_RETCODE_MARKET_CLOSED) == (
        10012,
        10014,
        10018,
    )
    assert (mt5.TRADE_RETCODE_NO_MONEY, mt5.TRADE_RETCODE_INVALID_FILL, mt5.TRADE_RETCODE_CONNECTION) == (
        10019,
        10030,
        10031,
    )
    assert (mt5.RES_S_OK, mt5.RES_E_INTERNAL_FAIL_CONNECT, mt5.RES_E_INTERNAL_FAIL_TIMEOUT) == (
        1,
        -10004,
        -10005,
    )


def test_the_documented_values_of_the_rest_of_the_enumerations():
    # The package's constants as MetaQuotes' docstrings list them (shipped in mt5linux 1.1.1's
    # constants.py): execution modes, order and deal types, the retcodes past 10040.
    assert (
        mt5.SYMBOL_TRADE_EXECUTION_REQUEST,
        mt5.SYMBOL_TRADE_EXECUTION_INSTANT,
        mt5.SYMBOL_TRADE_EXECUTION_MARKET,
        mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE,
    ) == (0, 1, 2, 3)
    assert (mt5.ORDER_TYPE_BUY_LIMIT, mt5.ORDER_TYPE_SELL_STOP_LIMIT, mt5.ORDER_TYPE_CLOSE_BY) == (2, 7, 8)
    assert (mt5.DEAL_TYPE_BALANCE, mt5.DEAL_TYPE_CREDIT, mt5.DEAL_TYPE_COMMISSION) == (2, 3, 7)
    assert (mt5.DEAL_TYPE_SELL_CANCELED, mt5.DEAL_DIVIDEND, mt5.DEAL_TAX) == (14, 15, 17)
    assert (mt5.ACCOUNT_TRADE_MODE_DEMO, mt5.ACCOUNT_TRADE_MODE_CONTEST, mt5.ACCOUNT_TRADE_MODE_REAL) == (
        0,
        1,
        2,
    )
    assert (mt5.TRADE_RETCODE_PLACED, mt5.TRADE_RETCODE_CLIENT_DISABLES_AT) == (10008, 10027)
    assert (
        mt5.TRADE_RETCODE_REJECT_CANCEL,
        mt5.TRADE_RETCODE_CLOSE_ONLY,
        mt5.TRADE_RETCODE_HEDGE_PROHIBITED,
    ) == (
        10041,
        10044,
        10046,
    )
    assert (mt5.RES_E_INVALID_PARAMS, mt5.RES_E_NOT_FOUND, mt5.RES_E_AUTH_FAILED) == (-2, -4, -6)


def documented(names: str) -> tuple[str, ...]:
    return tuple(names.split())


def test_named_tuples_have_the_documented_fields_in_the_documented_order():
    assert mt5.TradePosition._fields == documented(
        "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open "
        "sl tp price_current swap profit symbol comment external_id"
    )
    assert mt5.TradeDeal._fields == documented(
        "ticket order time time_msc type entry magic position_id reason volume price commission swap profit "
        "fee symbol comment external_id"
    )
    assert mt5.OrderSendResult._fields == documented(
        "retcode deal order volume price bid ask comment request_id retcode_external request"
    )
    assert mt5.TradeRequest._fields == documented(
        "action magic order symbol volume price stoplimit sl tp deviation type type_filling type_time "
        "expiration comment position position_by"
    )
    assert mt5.Tick._fields == documented("time bid ask last volume time_msc flags volume_real")
    assert mt5.AccountInfo._fields[:10] == documented(
        "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode "
        "currency_digits fifo_close"
    )
    assert mt5.TerminalInfo._fields[:3] == documented("community_account community_connection connected")


def test_positions_report_times_in_the_servers_clock_and_money_as_floats(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.quote("EURUSD", bid="1.08610", ask="1.08620")
    [position] = mt5.positions_get()
    assert position.ticket == position.identifier == ticket
    # Two hours ahead of UTC, as a GMT+2 broker's server counts: labelled seconds since 1970.
    assert abs(position.time - time.time() - 7200) < 5
    assert position.time == position.time_msc // 1000
    assert isinstance(position.profit, float) and isinstance(position.volume, float)
    assert position.price_current == 1.0861
    # (1.08610 - 1.08510) × 0.5 lots × 100,000
    assert position.profit == 50.0
    assert mt5.account_info().equity == 10050.0
    assert terminal.totals() == {
        "balance": Decimal("10000"),
        "profit": Decimal("50.00"),
        "equity": Decimal("10050.00"),
        "margin": Decimal("542.55"),
    }


def test_ticks_come_only_for_symbols_selected_in_the_market_watch(terminal):
    assert mt5.symbol_info_tick("XAUUSD") is None
    assert mt5.last_error()[0] == mt5.RES_E_NOT_FOUND
    assert mt5.symbol_info("XAUUSD").visible is False
    assert mt5.symbol_select("XAUUSD", True)
    tick = mt5.symbol_info_tick("XAUUSD")
    assert (tick.bid, tick.ask) == (2331.43, 2331.73)
    assert abs(tick.time - time.time() - 7200) < 5


def test_a_symbol_with_open_positions_cannot_leave_the_market_watch(terminal):
    # symbol_select: "A symbol cannot be removed if open charts with this symbol are currently
    # present or positions are opened on it."
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    assert mt5.symbol_select("EURUSD", False) is False
    assert mt5.symbol_info("EURUSD").visible is True
    terminal.close_position(ticket)
    assert mt5.symbol_select("EURUSD", False) is True
    assert mt5.symbol_info("EURUSD").visible is False


def test_no_positions_is_an_empty_tuple_and_a_failure_is_none_with_last_error(terminal):
    assert mt5.positions_get() == ()
    terminal.stop()
    assert mt5.positions_get() is None
    assert mt5.last_error() == (-10004, "No IPC connection")
    terminal.start()
    assert mt5.positions_get() == ()
    assert mt5.last_error() == (1, "Success")


def test_initialize_fails_without_a_terminal_or_with_a_wrong_password(terminal, tmp_path):
    assert mt5.initialize(str(tmp_path / "absent.sqlite3")) is False
    assert mt5.last_error() == (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")
    assert mt5.initialize(str(terminal.path), login=LOGIN, password="wrong") is False
    assert mt5.last_error()[0] == mt5.RES_E_AUTH_FAILED


def test_a_disconnected_terminal_still_answers_but_says_so_and_cannot_trade(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.disconnect()
    assert mt5.terminal_info().connected is False
    assert len(mt5.positions_get()) == 1
    assert mt5.order_send(close_request(ticket)).retcode == mt5.TRADE_RETCODE_CONNECTION
    assert len(mt5.positions_get()) == 1


def test_a_close_executes_at_the_bid_and_its_deal_realizes_the_profit(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.quote("EURUSD", bid="1.08410", ask="1.08420")
    result = mt5.order_send(close_request(ticket, price=1.0841))
    assert result.retcode == mt5.TRADE_RETCODE_DONE
    assert (result.volume, result.price) == (0.5, 1.0841)
    assert isinstance(result.request, mt5.TradeRequest) and result.request.position == ticket
    assert mt5.positions_get() == ()
    [opening, closing] = mt5.history_deals_get(position=ticket)
    assert closing.ticket == result.deal and closing.order == result.order
    assert (closing.entry, closing.type, closing.reason) == (
        mt5.DEAL_ENTRY_OUT,
        mt5.DEAL_TYPE_SELL,
        mt5.DEAL_REASON_EXPERT,
    )
    assert closing.profit == -50.0
    assert opening.entry == mt5.DEAL_ENTRY_IN
    assert mt5.account_info().balance == 9950.0


def test_history_deals_get_ticket_is_the_order_ticket_not_the_deal_ticket(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    result = mt5.order_send(close_request(ticket))
    assert [deal.ticket for deal in mt5.history_deals_get(ticket=result.order)] == [result.deal]
    assert mt5.history_deals_get(ticket=result.deal) == ()


def test_history_by_interval_counts_in_server_time(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    now = int(time.time())
    assert mt5.history_deals_get(now - 60, now + 60) == ()
    [deal] = mt5.history_deals_get(now + 7200 - 60, now + 7200 + 60)
    assert deal.position_id == ticket


def test_group_filters_apply_in_order_with_exclusions(terminal):
    terminal.open_position("EURUSD", "buy", "0.10")
    assert len(mt5.positions_get(group="*USD*")) == 1
    assert mt5.positions_get(group="*USD*,!EUR*") == ()


@pytest.mark.parametrize(
    ("fields", "retcode"),
    [
        ({"volume": 0.5}, None),
        ({"volume": 0.005}, mt5.TRADE_RETCODE_INVALID_VOLUME),
        ({"volume": 0.125}, mt5.TRADE_RETCODE_INVALID_VOLUME),
        ({"volume": 0.6}, mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME),
        ({"position": 1}, mt5.TRADE_RETCODE_POSITION_CLOSED),
        ({"type": mt5.ORDER_TYPE_BUY}, mt5.TRADE_RETCODE_INVALID),
        ({"price": 1.0800}, mt5.TRADE_RETCODE_REQUOTE),
    ],
)
def test_order_send_checks_the_request_as_the_terminal_does(terminal, fields, retcode):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    result = mt5.order_send(close_request(ticket, **fields))
    assert result.retcode == (retcode or mt5.TRADE_RETCODE_DONE)
    assert len(mt5.positions_get()) == (0 if retcode is None else 1)


INSTANT, MARKET, EXCHANGE = (
    mt5.SYMBOL_TRADE_EXECUTION_INSTANT,
    mt5.SYMBOL_TRADE_EXECUTION_MARKET,
    mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE,
)
FOK, IOC, RETURN = mt5.ORDER_FILLING_FOK, mt5.ORDER_FILLING_IOC, mt5.ORDER_FILLING_RETURN


@pytest.mark.parametrize(
    ("execution", "flags", "filling", "accepted"),
    [
        # MetaTrader 5 Help, "Fill Policy": instant and request execution fill market orders
        # Fill or Kill only, whatever the symbol's flags say.
        (INSTANT, mt5.SYMBOL_FILLING_IOC, FOK, True),
        (INSTANT, mt5.SYMBOL_FILLING_FOK | mt5.SYMBOL_FILLING_IOC, IOC, False),
        (INSTANT, mt5.SYMBOL_FILLING_FOK, RETURN, False),
        (mt5.SYMBOL_TRADE_EXECUTION_REQUEST, 0, FOK, True),
        # Market and exchange execution: FOK and IOC as the SYMBOL_FILLING_* flags allow.
        (MARKET, mt5.SYMBOL_FILLING_IOC, FOK, False),
        (MARKET, mt5.SYMBOL_FILLING_IOC, IOC, True),
        (EXCHANGE, mt5.SYMBOL_FILLING_FOK, FOK, True),
        # Return for market orders: exchange execution only.
        (MARKET, mt5.SYMBOL_FILLING_FOK | mt5.SYMBOL_FILLING_IOC, RETURN, False),
        (EXCHANGE, 0, RETURN, True),
    ],
)
def test_fill_policies_follow_the_execution_mode_and_the_symbols_flags(
    terminal, execution, flags, filling, accepted
):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_filling_mode("EURUSD", flags, execution=execution)
    result = mt5.order_send(close_request(ticket, type_filling=filling))
    assert result.retcode == (mt5.TRADE_RETCODE_DONE if accepted else mt5.TRADE_RETCODE_INVALID_FILL)


def test_market_closed_and_algo_trading_off_refuse(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_market_open("EURUSD", False)
    assert mt5.order_send(close_request(ticket)).retcode == mt5.TRADE_RETCODE_MARKET_CLOSED
    terminal.set_market_open("EURUSD", True)
    terminal.set_algo_trading(False)
    assert mt5.order_send(close_request(ticket)).retcode == mt5.TRADE_RETCODE_CLIENT_DISABLES_AT
    assert [request.retcode for request in terminal.order_requests()] == [10018, 10027]


def test_a_comment_past_the_terminals_limit_is_refused_before_it_reaches_the_terminal(terminal):
    # Public code reports order_send and order_check answering None with
    # (-2, 'Invalid "comment" argument') past 28 characters on some builds (29 or 31 on others).
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    assert mt5.order_check(close_request(ticket, comment="x" * 29)) is None
    assert mt5.order_send(close_request(ticket, comment="x" * 29)) is None
    assert mt5.last_error() == (mt5.RES_E_INVALID_PARAMS, 'Invalid "comment" argument')
    assert terminal.order_requests() == [] and ticket in terminal.positions()
    assert mt5.order_send(close_request(ticket, comment="x" * 28)).retcode == mt5.TRADE_RETCODE_DONE
    assert terminal.deals()[-1].comment == "x" * 28


def test_scripted_requote_then_done(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_requote()
    assert mt5.order_send(close_request(ticket)).retcode == mt5.TRADE_RETCODE_REQUOTE
    assert mt5.order_send(close_request(ticket)).retcode == mt5.TRADE_RETCODE_DONE
    assert terminal.scripted_answers_left() == 0


def test_scripted_lost_answer_executes_and_answers_none(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_lost_answer()
    assert mt5.order_send(close_request(ticket)) is None
    assert mt5.last_error() == (-10005, "IPC timeout")
    assert mt5.positions_get() == ()
    assert terminal.order_requests()[-1].retcode is None


def test_scripted_partial_fill_leaves_the_rest_open(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_partial_fill("0.20")
    result = mt5.order_send(close_request(ticket))
    assert (result.retcode, result.volume) == (mt5.TRADE_RETCODE_DONE_PARTIAL, 0.2)
    assert terminal.positions()[ticket]["volume"] == Decimal("0.30")


def test_scripted_refusal_does_not_execute(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_refusal(mt5.TRADE_RETCODE_NO_MONEY)
    assert mt5.order_send(close_request(ticket)).retcode == mt5.TRADE_RETCODE_NO_MONEY
    assert ticket in terminal.positions()


def test_switching_accounts_changes_what_account_info_says(terminal):
    terminal.add_account(7000001, log_in=False)
    terminal.switch_account(7000001)
    assert mt5.account_info().login == 7000001
    terminal.log_out()
    assert mt5.account_info() is None
