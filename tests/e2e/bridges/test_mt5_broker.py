"""The MT5 broker against the stand-in terminal, in process: readings, closes, settling, settings."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.mt5_terminals import LOGIN, PASSWORD, two_symbol_terminal
from tests.support.net import free_port, reachable
from tradeguard.bridges import config
from tradeguard.bridges.broker import CloseOrder, OutcomeStatus, ReadFailed
from tradeguard.bridges.mt5 import bindings_from_config, load_package
from tradeguard.bridges.mt5 import standin as mt5
from tradeguard.bridges.mt5.settings import Mt5Settings, read_settings
from tradeguard.bridges.mt5.standin_terminal import StandinTerminal
from tradeguard.bridges.mt5.terminal_broker import TerminalBroker, command_comment

COMMAND_ID = "0b5e2f7c-6f0e-4a55-9f3c-2d1b8f9e7a10"


@pytest.fixture
def terminal(tmp_path):
    terminal = two_symbol_terminal(tmp_path)
    yield terminal
    mt5.shutdown()
    terminal.close()


def broker_of(terminal: StandinTerminal, offset_recheck=timedelta(hours=1), **settings) -> TerminalBroker:
    fields = {"login": LOGIN, "password": PASSWORD, "path": str(terminal.path), "watch": ("EURUSD",)}
    broker = TerminalBroker(
        mt5, Mt5Settings(**{**fields, **settings}), sleep=lambda seconds: None, offset_recheck=offset_recheck
    )
    broker.connect()
    return broker


def now() -> datetime:
    return datetime.now(UTC)


def order(ticket: int, command_id: str = COMMAND_ID, volume: str = "0.50") -> CloseOrder:
    return CloseOrder(command_id, str(ticket), "EURUSD", Decimal(volume))


def test_a_reading_is_exact_decimals_in_utc(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50", swap="-1.25", sl="1.08000")
    terminal.quote("EURUSD", bid="1.08613", ask="1.08621")
    reading = broker_of(terminal).read(now())
    snapshot = reading.snapshot
    assert (snapshot["balance"], snapshot["equity"], snapshot["currency"]) == (
        Decimal("10000.00"),
        Decimal("10050.25"),
        "USD",
    )
    [position] = snapshot["positions"]
    assert position["ticket"] == ticket
    assert (position["volume"], position["open_price"], position["current_price"]) == (
        Decimal("0.50"),
        Decimal("1.08510"),
        Decimal("1.08613"),
    )
    assert (position["profit"], position["swap"], position["stop_loss"]) == (
        Decimal("51.50"),
        Decimal("-1.25"),
        Decimal("1.08000"),
    )
    assert "take_profit" not in position
    # Opened a moment ago in UTC, though the terminal says two hours later.
    assert abs(position["opened_at"] - now()) < timedelta(seconds=5)
    assert snapshot["quotes"] == [{"symbol": "EURUSD", "bid": Decimal("1.08613"), "ask": Decimal("1.08621")}]
    assert reading.closed_deals == []


def test_a_positions_magic_and_comment_are_sent_as_the_terminal_reports_them(terminal):
    by_expert = terminal.open_position("EURUSD", "buy", "0.10", magic=20261201, comment="grid #3")
    by_hand = terminal.open_position("EURUSD", "sell", "0.10", reason=mt5.POSITION_REASON_CLIENT)

    sent = {item["ticket"]: item for item in broker_of(terminal).read(now()).snapshot["positions"]}

    assert (sent[by_expert]["magic"], sent[by_expert]["comment"]) == (20261201, "grid #3")
    assert (sent[by_hand]["magic"], sent[by_hand]["comment"]) == (0, "")


def test_a_comment_tradeguard_would_refuse_is_left_out_so_the_snapshot_is_still_taken(terminal):
    broken = terminal.open_position("EURUSD", "buy", "0.10", magic=7, comment="line\nbreak")
    too_long = terminal.open_position("EURUSD", "buy", "0.10", magic=8, comment="x" * 65)
    longest = terminal.open_position("EURUSD", "buy", "0.10", magic=9, comment="x" * 64)

    sent = {item["ticket"]: item for item in broker_of(terminal).read(now()).snapshot["positions"]}

    assert "comment" not in sent[broken] and "comment" not in sent[too_long]
    assert [sent[ticket]["magic"] for ticket in (broken, too_long, longest)] == [7, 8, 9]
    assert sent[longest]["comment"] == "x" * 64


def test_held_and_watched_symbols_are_quoted_and_selected_first(terminal):
    broker = broker_of(terminal, watch=("EURUSD", "XAUUSD"))
    quotes = broker.read(now()).snapshot["quotes"]
    assert [quote["symbol"] for quote in quotes] == ["EURUSD", "XAUUSD"]
    assert quotes[1]["bid"] == Decimal("2331.43")
    assert mt5.symbol_info("XAUUSD").visible is True


def test_a_symbol_dropped_from_the_market_watch_is_selected_again(terminal):
    broker = broker_of(terminal)
    broker.read(now())
    mt5.symbol_select("EURUSD", False)
    with pytest.raises(ReadFailed, match=r"symbol_info_tick\(\) answered None"):
        broker.read(now())
    assert [quote["symbol"] for quote in broker.read(now()).snapshot["quotes"]] == ["EURUSD"]


def test_a_configured_offset_is_used_as_given(terminal):
    terminal.set_server_utc_offset(3)
    terminal.open_position("EURUSD", "buy", "0.10")
    [position] = broker_of(terminal, server_utc_offset_seconds=3 * 3600).read(now()).snapshot["positions"]
    assert abs(position["opened_at"] - now()) < timedelta(seconds=5)
    [wrong] = broker_of(terminal, server_utc_offset_seconds=2 * 3600).read(now()).snapshot["positions"]
    assert abs(wrong["opened_at"] - now() - timedelta(hours=1)) < timedelta(seconds=5)


def test_the_derived_offset_is_logged(terminal, caplog):
    with caplog.at_level(logging.INFO, logger="tradeguard.bridges.mt5"):
        broker_of(terminal).read(now())
    assert "server time is UTC+2:00, derived from the ticks" in caplog.text


def test_the_derived_offset_is_kept_until_the_next_check(terminal):
    broker = broker_of(terminal)
    broker.read(now())
    terminal.set_server_utc_offset(3)
    terminal.quote("EURUSD", bid="1.08500", ask="1.08510")
    terminal.open_position("EURUSD", "buy", "0.10")
    [kept] = broker.read(now()).snapshot["positions"]
    assert kept["opened_at"] - now() > timedelta(minutes=59)


def test_the_derived_offset_follows_the_servers_change_at_a_check(terminal):
    broker = broker_of(terminal, offset_recheck=timedelta(0))
    broker.read(now())
    terminal.set_server_utc_offset(3)
    terminal.quote("EURUSD", bid="1.08500", ask="1.08510")
    terminal.open_position("EURUSD", "buy", "0.10")
    [followed] = broker.read(now()).snapshot["positions"]
    assert abs(followed["opened_at"] - now()) < timedelta(seconds=5)


def test_a_tick_that_has_not_moved_does_not_change_the_offset(terminal):
    broker = broker_of(terminal, offset_recheck=timedelta(0))
    broker.read(now())
    terminal.set_server_utc_offset(3)
    terminal.open_position("EURUSD", "buy", "0.10")
    [kept] = broker.read(now()).snapshot["positions"]
    assert kept["opened_at"] - now() > timedelta(minutes=59)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda terminal: terminal.disconnect(), "not connected to the trade server"),
        (lambda terminal: terminal.stop(), "-10004 No IPC connection"),
        (lambda terminal: terminal.log_out(), r"account_info\(\) answered None"),
    ],
)
def test_no_reading_when_the_terminal_cannot_confirm_the_account(terminal, break_it, message):
    broker = broker_of(terminal)
    break_it(terminal)
    with pytest.raises(ReadFailed, match=message):
        broker.read(now())


def test_an_empty_list_answered_none_with_success_is_empty_not_a_failure(terminal):
    # The documentation says only that None means an error; public code reports terminals that
    # answer an empty positions_get or history_deals_get with None and last_error (1, 'Success').
    terminal.answer_empty_collections_with_none()
    broker = broker_of(terminal)
    assert mt5.positions_get() is None and mt5.last_error() == (1, "Success")
    reading = broker.read(now())
    assert (reading.snapshot["positions"], reading.closed_deals) == ([], [])
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.close_position(ticket, reason=mt5.DEAL_REASON_SL, price="1.08100")
    outcome = broker.close(order(ticket), [])
    assert (outcome.status, outcome.detail) == (
        OutcomeStatus.EXECUTED,
        "position already closed, no order sent",
    )
    terminal.stop()
    with pytest.raises(ReadFailed, match="-10004"):
        broker.read(now())


def test_the_wrong_account_logged_in_names_both(terminal):
    terminal.add_account(7000001, log_in=False)
    broker = broker_of(terminal)
    terminal.switch_account(7000001)
    with pytest.raises(ReadFailed, match="logged in to account 7000001, not to the configured 5012345"):
        broker.read(now())


def test_the_broker_attaches_again_once_the_terminal_is_back(terminal):
    broker = broker_of(terminal)
    terminal.stop()
    with pytest.raises(ReadFailed):
        broker.read(now())
    terminal.start()
    assert broker.read(now()).snapshot["balance"] == Decimal("10000.00")


def test_closed_deals_are_reported_once_with_their_reason(terminal):
    broker = broker_of(terminal)
    stopped = terminal.open_position("EURUSD", "buy", "0.50")
    manual = terminal.open_position("EURUSD", "sell", "0.20")
    broker.read(now())
    deal = terminal.close_position(stopped, reason=mt5.DEAL_REASON_SL, price="1.08000", commission="-3.50")
    terminal.close_position(manual, reason=mt5.DEAL_REASON_CLIENT)
    first = broker.read(now()).closed_deals
    assert [(item["ticket"], item["reason"]) for item in first] == [
        (stopped, "stop_loss"),
        (manual, "manual"),
    ]
    assert first[0]["deal_id"] == deal
    assert (first[0]["close_price"], first[0]["profit"], first[0]["commission"]) == (
        Decimal("1.08000"),
        Decimal("-255.00"),
        Decimal("-3.50"),
    )
    assert abs(first[0]["closed_at"] - now()) < timedelta(seconds=5)
    assert broker.read(now()).closed_deals == []


def test_the_first_reading_reports_the_closes_of_the_day_before(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.close_position(ticket, reason=mt5.DEAL_REASON_TP)
    [deal] = broker_of(terminal).read(now()).closed_deals
    assert (deal["ticket"], deal["reason"]) == (ticket, "take_profit")


def test_a_close_sends_the_documented_request(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.quote("EURUSD", bid="1.08410", ask="1.08420")
    outcome = broker_of(terminal).close(order(ticket), [])
    assert (outcome.status, outcome.close_price, outcome.profit) == (
        OutcomeStatus.EXECUTED,
        Decimal("1.08410"),
        Decimal("-50.00"),
    )
    [sent] = terminal.order_requests()
    assert sent.request == {
        "action": mt5.TRADE_ACTION_DEAL,
        "position": ticket,
        "symbol": "EURUSD",
        "volume": 0.5,
        "type": mt5.ORDER_TYPE_SELL,
        "price": 1.0841,
        "deviation": 20,
        "type_filling": mt5.ORDER_FILLING_FOK,
        "type_time": mt5.ORDER_TIME_GTC,
        "magic": 20251125,
        "comment": "tg close 0b5e2f7c6f0e4a55",
    }
    assert len(sent.request["comment"]) <= mt5.COMMENT_LIMIT
    assert ticket not in terminal.positions()


def test_a_sell_closes_with_a_buy_at_the_ask(terminal):
    ticket = terminal.open_position("EURUSD", "sell", "0.20")
    broker_of(terminal).close(order(ticket, volume="0.20"), [])
    [sent] = terminal.order_requests()
    assert (sent.request["type"], sent.request["price"], sent.request["volume"]) == (
        mt5.ORDER_TYPE_BUY,
        1.0851,
        0.2,
    )


@pytest.mark.parametrize(
    ("execution", "flags", "filling"),
    [
        # Instant execution fills market orders Fill or Kill (MQL5 reference, SYMBOL_FILLING_MODE;
        # MetaTrader 5 Help, "Fill Policy"), whatever the flags say.
        (mt5.SYMBOL_TRADE_EXECUTION_INSTANT, mt5.SYMBOL_FILLING_IOC, mt5.ORDER_FILLING_FOK),
        (
            mt5.SYMBOL_TRADE_EXECUTION_MARKET,
            mt5.SYMBOL_FILLING_FOK | mt5.SYMBOL_FILLING_IOC,
            mt5.ORDER_FILLING_FOK,
        ),
        (mt5.SYMBOL_TRADE_EXECUTION_MARKET, mt5.SYMBOL_FILLING_IOC, mt5.ORDER_FILLING_IOC),
        (mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE, 0, mt5.ORDER_FILLING_RETURN),
    ],
)
def test_the_fill_policy_follows_the_execution_mode_and_the_symbols_flags(
    terminal, execution, flags, filling
):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_filling_mode("EURUSD", flags, execution=execution)
    assert broker_of(terminal).close(order(ticket), []).status is OutcomeStatus.EXECUTED
    assert [sent.request["type_filling"] for sent in terminal.order_requests()] == [filling]


def test_a_refused_fill_policy_is_followed_by_the_next_one_the_symbol_offers(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    flags = mt5.SYMBOL_FILLING_FOK | mt5.SYMBOL_FILLING_IOC
    terminal.set_filling_mode("EURUSD", flags, execution=mt5.SYMBOL_TRADE_EXECUTION_MARKET)
    terminal.script_refusal(mt5.TRADE_RETCODE_INVALID_FILL)
    assert broker_of(terminal).close(order(ticket), []).status is OutcomeStatus.EXECUTED
    assert [(sent.request["type_filling"], sent.retcode) for sent in terminal.order_requests()] == [
        (mt5.ORDER_FILLING_FOK, 10030),
        (mt5.ORDER_FILLING_IOC, 10009),
    ]


def test_every_fill_policy_refused_fails_with_the_position_open(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_filling_mode("EURUSD", 0, execution=mt5.SYMBOL_TRADE_EXECUTION_MARKET)
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.FAILED and "every fill policy tried" in outcome.detail
    assert [(sent.request["type_filling"], sent.retcode) for sent in terminal.order_requests()] == [
        (mt5.ORDER_FILLING_RETURN, 10030)
    ]
    assert ticket in terminal.positions()


def test_a_requote_is_retried_at_a_fresh_tick(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_requote()
    assert broker_of(terminal).close(order(ticket), []).status is OutcomeStatus.EXECUTED
    assert [sent.retcode for sent in terminal.order_requests()] == [10004, 10009]


def test_requotes_beyond_max_retries_fail(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    for _ in range(3):
        terminal.script_requote()
    outcome = broker_of(terminal, max_retries=2).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.FAILED and "10004" in outcome.detail
    assert len(terminal.order_requests()) == 3
    assert ticket in terminal.positions()


def test_a_refusal_fails_with_its_code(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_market_open("EURUSD", False)
    outcome = broker_of(terminal).close(order(ticket), [])
    assert (outcome.status, outcome.detail) == (OutcomeStatus.FAILED, "refused: retcode 10018 Market closed")
    assert len(terminal.order_requests()) == 1


def test_a_partial_fill_closes_the_rest(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_partial_fill("0.20")
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.EXECUTED
    assert [(sent.request["volume"], sent.retcode) for sent in terminal.order_requests()] == [
        (0.5, 10010),
        (0.3, 10009),
    ]
    assert ticket not in terminal.positions()


def test_a_partial_fill_under_return_sends_no_second_order(terminal):
    # ORDER_FILLING_RETURN: "If filled partially, a market or limit order with the remaining
    # volume is not canceled, and is processed further" (ENUM_ORDER_TYPE_FILLING).
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_filling_mode("EURUSD", 0, execution=mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE)
    terminal.script_partial_fill("0.20")
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.UNKNOWN and "no second order sent" in outcome.detail
    assert "0.2 lots were closed before" in outcome.detail
    assert [(sent.request["type_filling"], sent.retcode) for sent in terminal.order_requests()] == [
        (mt5.ORDER_FILLING_RETURN, 10010)
    ]


def test_a_lost_answer_is_found_executed_by_looking_without_a_second_order(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_lost_answer()
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.EXECUTED and "found" in outcome.detail
    assert outcome.close_price == Decimal("1.08500")
    assert len(terminal.order_requests()) == 1


@pytest.mark.parametrize(
    "retcode", [mt5.TRADE_RETCODE_PLACED, mt5.TRADE_RETCODE_CONNECTION, mt5.TRADE_RETCODE_TIMEOUT]
)
def test_an_answer_that_may_hide_an_execution_is_unknown_while_the_position_is_open(terminal, retcode):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_refusal(retcode)
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.UNKNOWN and str(retcode) in outcome.detail
    assert len(terminal.order_requests()) == 1


def test_a_request_the_package_refuses_as_invalid_fails_as_nothing_sent(terminal):
    # A terminal build whose comment limit is shorter than the bridge's 25 characters: the
    # package answers None with -2 (RES_E_INVALID_PARAMS) and the request never leaves it.
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_comment_limit(20)
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.detail == (
        "order_send refused the request, nothing sent: last_error (-2, 'Invalid \"comment\" argument')"
    )
    assert terminal.order_requests() == [] and ticket in terminal.positions()


def test_trading_from_python_disabled_in_the_terminal_fails_as_nothing_sent(terminal):
    # TerminalInfo.tradeapi_disabled: the terminal's option to refuse trading from the Python
    # API; public code reports order_send answering None with (-8, 'Terminal: Autotrading disabled').
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.set_python_trading(False)
    broker = broker_of(terminal)
    assert mt5.terminal_info().tradeapi_disabled is True
    outcome = broker.close(order(ticket), [])
    assert (outcome.status, outcome.detail) == (
        OutcomeStatus.FAILED,
        "order_send refused the request, nothing sent: last_error (-8, 'Terminal: Autotrading disabled')",
    )
    assert terminal.order_requests() == [] and ticket in terminal.positions()


def test_the_terminal_lost_after_executing_is_unknown(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.script_terminal_lost_after_execution()
    outcome = broker_of(terminal).close(order(ticket), [])
    assert outcome.status is OutcomeStatus.UNKNOWN and "-10004" in outcome.detail
    assert len(terminal.order_requests()) == 1


def test_a_position_already_gone_sends_nothing(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.close_position(ticket, reason=mt5.DEAL_REASON_SL, price="1.08100")
    outcome = broker_of(terminal).close(order(ticket), [])
    assert (outcome.status, outcome.detail, outcome.close_price) == (
        OutcomeStatus.EXECUTED,
        "position already closed, no order sent",
        Decimal("1.08100"),
    )
    assert terminal.order_requests() == []


def test_an_earlier_commands_deal_means_executed_without_sending(terminal):
    earlier = "9f0e1d2c-3b4a-5968-7766-554433221100"
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.close_position(
        ticket, reason=mt5.DEAL_REASON_EXPERT, magic=20251125, comment=command_comment(earlier)
    )
    outcome = broker_of(terminal).close(order(ticket), [earlier])
    assert outcome.status is OutcomeStatus.EXECUTED and earlier in outcome.detail
    assert terminal.order_requests() == []


def test_settle_only_looks(terminal):
    executed = terminal.open_position("EURUSD", "buy", "0.50")
    still_open = terminal.open_position("EURUSD", "buy", "0.10")
    broker = broker_of(terminal)
    terminal.script_lost_answer()
    broker.close(order(executed), [])
    sent = len(terminal.order_requests())
    assert broker.settle(order(executed)).status is OutcomeStatus.EXECUTED
    assert broker.settle(order(still_open, command_id="11111111-2222-3333-4444-555555555555")).status is (
        OutcomeStatus.FAILED
    )
    assert len(terminal.order_requests()) == sent == 1


def test_our_close_is_reported_as_a_close_command(terminal):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    broker = broker_of(terminal)
    broker.read(now())
    broker.close(order(ticket), [])
    [deal] = broker.read(now()).closed_deals
    assert (deal["ticket"], deal["reason"]) == (ticket, "close_command")


def bridge_file(tmp_path: Path, mt5_table: str) -> config.BridgeFile:
    path = tmp_path / "bridge.toml"
    path.write_text(
        '[tradeguard]\nurl = "http://127.0.0.1:8000"\ndevice_id = "dev_1"\nsecret_env = "TG_TEST_SECRET"\n'
        f"[mt5]\n{mt5_table}\n",
        encoding="utf-8",
    )
    return config.load(path)


def test_settings_defaults_and_the_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MT5_PASSWORD", PASSWORD)
    settings = read_settings(
        bridge_file(tmp_path, 'login = 5012345\npassword_env = "MT5_PASSWORD"\nwatch = ["EURUSD"]')
    )
    assert settings == Mt5Settings(login=5012345, password=PASSWORD, watch=("EURUSD",))
    assert PASSWORD not in repr(settings)
    offset = read_settings(bridge_file(tmp_path, "login = 1\nserver_utc_offset = 2.5"))
    assert offset.server_utc_offset_seconds == 9000


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("", "mt5.login is required"),
        ("login = 1", "list at least one in mt5.watch"),
        ("login = 1\nserver_utc_offset = 2.1", "whole quarter hours"),
        ("login = 1\nserver_utc_offset = 3\ndeviaton = 5", "mt5.deviaton is not a setting"),
        ('login = "5012345"\nserver_utc_offset = 2', "mt5.login must be an integer"),
    ],
)
def test_settings_errors_name_the_key(tmp_path, table, message):
    with pytest.raises(config.ConfigError, match=message):
        read_settings(bridge_file(tmp_path, table))


def test_bindings_from_config_loads_the_named_module(tmp_path, monkeypatch):
    monkeypatch.setenv("TG_TEST_SECRET", "device-secret")
    file = bridge_file(tmp_path, "login = 5012345\nserver_utc_offset = 2")
    [binding] = bindings_from_config(file, module="tradeguard.bridges.mt5.standin", host=None, port=None)
    assert (binding.name, binding.device.device_id, binding.device.secret) == (
        "mt5-5012345",
        "dev_1",
        "device-secret",
    )
    assert binding.broker.description == "mt5 login 5012345"


def test_without_the_official_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)
    with pytest.raises(config.ConfigError, match="MetaTrader5 package is not installed"):
        load_package(module=None, host=None, port=None)


class RpycServer:
    """An RPyC classic server whose Python imports the stand-in as `MetaTrader5`, as mt5server.exe
    serves the Windows Python's package to Linux; stopped and started again on the same port."""

    def __init__(self, shim: Path) -> None:
        self.port = free_port()
        self._environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), *sys.path])}
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from rpyc.cli.rpyc_classic import main; main()",
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-q",
            ],
            env=self._environment,
        )
        deadline = time.monotonic() + 20
        while not reachable("127.0.0.1", self.port):
            assert self._process.poll() is None and time.monotonic() < deadline, (
                "the RPyC server did not start"
            )
            time.sleep(0.05)

    def stop(self) -> None:
        self._process.kill()
        self._process.wait()


@pytest.fixture
def rpyc_server(tmp_path):
    pytest.importorskip("rpyc")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "MetaTrader5.py").write_text("from tradeguard.bridges.mt5.standin import *  # noqa: F403\n")
    server = RpycServer(shim)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_terminal_behind_an_rpyc_server_reads_and_closes_alike(terminal, rpyc_server):
    ticket = terminal.open_position("EURUSD", "buy", "0.50")
    terminal.quote("EURUSD", bid="1.08613", ask="1.08621")
    package = load_package(module=None, host="127.0.0.1", port=rpyc_server.port)
    try:
        settings = Mt5Settings(login=LOGIN, password=PASSWORD, path=str(terminal.path), watch=("EURUSD",))
        broker = TerminalBroker(package, settings)
        broker.connect()
        [position] = broker.read(now()).snapshot["positions"]
        assert (position["ticket"], position["profit"]) == (ticket, Decimal("51.50"))
        outcome = broker.close(order(ticket), [])
        assert (outcome.status, outcome.close_price) == (OutcomeStatus.EXECUTED, Decimal("1.08613"))
        assert [sent.request["comment"] for sent in terminal.order_requests()] == [
            "tg close 0b5e2f7c6f0e4a55"
        ]
        # The remote process sent it, not this one.
        assert terminal.order_requests()[0].process_id != os.getpid()
        assert type(package.last_error()) is tuple
    finally:
        package.close()


def test_an_rpyc_server_restarted_is_reached_again_as_a_terminal_that_came_back(terminal, rpyc_server):
    package = load_package(module=None, host="127.0.0.1", port=rpyc_server.port)
    try:
        settings = Mt5Settings(login=LOGIN, password=PASSWORD, path=str(terminal.path), watch=("EURUSD",))
        broker = TerminalBroker(package, settings)
        broker.connect()
        before = broker.read(now()).snapshot
        rpyc_server.stop()

        with pytest.raises(
            ReadFailed,
            match=f"last_error -10004 No IPC connection: the RPyC server at 127.0.0.1:{rpyc_server.port} is gone",
        ):
            broker.read(now())
        with pytest.raises(ReadFailed, match="no RPyC server at"):
            broker.read(now())
        rpyc_server.start()
        after = broker.read(now()).snapshot
    finally:
        package.close()

    assert (after["balance"], after["equity"]) == (before["balance"], before["equity"])
