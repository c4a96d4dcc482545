"""The Binance USDⓈ-M broker through ccxt's real client against the local stand-in for the exchange."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.fake_binance import (
    INSUFFICIENT_MARGIN,
    REDUCE_ONLY_REJECTED,
    Delay,
    Drop,
    FakeBinance,
    RateLimited,
    ServerError,
)
from tradeguard.bridges import config
from tradeguard.bridges.broker import BrokerUnavailable, CloseOrder, OutcomeStatus, ReadFailed
from tradeguard.bridges.config import ConfigError
from tradeguard.bridges.exchange import bindings_from_config
from tradeguard.bridges.exchange.account import ExchangeAccount
from tradeguard.bridges.exchange.binance_usdm import BinanceUsdmBroker, client_order_id

KEY, SECRET = "key-main", "secret-main"
ORDER = "/fapi/v1/order"


@pytest.fixture
def fake():
    exchange = FakeBinance()
    exchange.url = exchange.start()
    yield exchange
    exchange.stop()


def connected(fake: FakeBinance, key: str = KEY, secret: str = SECRET, **fields) -> BinanceUsdmBroker:
    fields = {"watch": ("SOLUSDT",), "timeout_seconds": 1.0, "rate_limit_ms": 1, **fields}
    broker = BinanceUsdmBroker(ExchangeAccount("main", key, secret, api_url=fake.url, **fields))
    broker.connect()
    return broker


def now() -> datetime:
    return datetime.now(UTC)


def close_order(ticket: str, volume: str = "0.100") -> CloseOrder:
    symbol = ticket.split(":")[0]
    return CloseOrder(str(uuid.uuid4()), ticket, symbol, Decimal(volume))


def test_a_reading_reports_balance_equity_positions_and_quotes_exactly(fake):
    account = fake.add_account(KEY, SECRET, "10000", hedge_mode=True)
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.125")
    fake.trade_by_hand(account, "ETHUSDT", "SELL", "1.500")
    fake.set_price("BTCUSDT", bid="60321.40", ask="60321.50", mark="60321.45")
    fake.set_price("ETHUSDT", bid="2987.11", ask="2987.12", mark="2987.115")
    broker = connected(fake)

    reading = broker.read(now())

    snapshot = reading.snapshot
    assert snapshot["balance"] == account.wallet
    assert snapshot["equity"] == fake.equity(account) == account.wallet + fake.unrealized(account)
    assert snapshot["currency"] == "USDT"
    by_ticket = {position["ticket"]: position for position in snapshot["positions"]}
    assert set(by_ticket) == {"BTCUSDT:long", "ETHUSDT:short"}
    btc, eth = by_ticket["BTCUSDT:long"], by_ticket["ETHUSDT:short"]
    assert (btc["side"], btc["volume"], btc["open_price"]) == ("buy", Decimal("0.125"), Decimal("60000.10"))
    assert btc["current_price"] == Decimal("60321.45")
    assert btc["profit"] == (Decimal("60321.45") - Decimal("60000.10")) * Decimal("0.125")
    # Sold 1.5 at the bid 3000.00, marked at 2987.115: (3000.00 - 2987.115) * 1.5.
    assert (eth["side"], eth["volume"], eth["profit"]) == ("sell", Decimal("1.500"), Decimal("19.32750000"))
    assert all(isinstance(value, Decimal) for value in (btc["volume"], btc["profit"], snapshot["equity"]))
    assert {quote["symbol"]: (quote["bid"], quote["ask"]) for quote in snapshot["quotes"]} == {
        "BTCUSDT": (Decimal("60321.40"), Decimal("60321.50")),
        "ETHUSDT": (Decimal("2987.11"), Decimal("2987.12")),
        "SOLUSDT": (Decimal("150.0000"), Decimal("150.0100")),
    }
    assert reading.closed_deals == ()  # the opening fills reduced nothing


def test_fills_that_reduced_a_position_become_closed_deals_once_with_their_reason(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.200")
    fake.trade_by_hand(account, "SOLUSDT", "SELL", "10")
    broker = connected(fake)
    assert broker.read(now()).closed_deals == ()

    fake.set_price("BTCUSDT", bid="59000.00", ask="59000.10")
    fake.set_price("SOLUSDT", bid="170.0000", ask="170.0100")
    manual = fake.close_by_hand(account, "BTCUSDT", "BOTH")
    liquidation = fake.close_by_hand(account, "SOLUSDT", "BOTH", client_order_id="autoclose-1733054400123456")
    reading = broker.read(now())
    again = broker.read(now())

    deals = {deal["ticket"]: deal for deal in reading.closed_deals}
    assert set(deals) == {"BTCUSDT:long", "SOLUSDT:short"}
    btc, sol = deals["BTCUSDT:long"], deals["SOLUSDT:short"]
    assert btc["reason"] == "manual" and sol["reason"] == "stop_out"
    assert btc["close_price"] == Decimal("59000.00")
    assert btc["profit"] == (Decimal("59000.00") - Decimal("60000.10")) * Decimal("0.200")
    assert btc["commission"] == -(Decimal("59000.00") * Decimal("0.200") * Decimal("0.0004"))
    assert sol["profit"] == (Decimal("150.0000") - Decimal("170.0100")) * 10
    fills = {trade["orderId"]: trade for trade in account.trades}
    assert btc["deal_id"] == str(fills[manual["orderId"]]["id"])
    assert sol["deal_id"] == str(fills[liquidation["orderId"]]["id"])
    assert reading.snapshot["positions"] == []
    assert again.closed_deals == ()


def test_a_close_sends_one_reduce_only_market_order_with_the_commands_client_id(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    fake.set_price("BTCUSDT", bid="59500.00", ask="59500.10")
    broker = connected(fake)
    order = close_order("BTCUSDT:long")

    outcome = broker.close(order, earlier=())

    [sent] = fake.orders_received(account)
    assert (
        sent["newClientOrderId"]
        == client_order_id(order.command_id)
        == "tg-" + uuid.UUID(order.command_id).hex
    )
    assert (sent["side"], sent["type"], sent["quantity"], sent["reduceOnly"]) == (
        "SELL",
        "MARKET",
        "0.1",
        "true",
    )
    assert "positionSide" not in sent
    assert outcome.status is OutcomeStatus.EXECUTED
    assert outcome.close_price == Decimal("59500.00")
    assert outcome.profit == (Decimal("59500.00") - Decimal("60000.10")) * Decimal("0.100")
    assert account.positions == {}
    [deal] = broker.read(now()).closed_deals
    assert (deal["reason"], deal["profit"]) == ("close_command", outcome.profit)


def test_in_hedge_mode_a_close_names_the_positions_side_instead_of_reduce_only(fake):
    account = fake.add_account(KEY, SECRET, "10000", hedge_mode=True)
    fake.trade_by_hand(account, "ETHUSDT", "BUY", "1.000")
    fake.trade_by_hand(account, "ETHUSDT", "SELL", "2.000")
    broker = connected(fake)

    outcome = broker.close(close_order("ETHUSDT:short"), earlier=())

    [sent] = fake.orders_received(account)
    assert (sent["side"], sent["positionSide"], sent["quantity"]) == ("BUY", "SHORT", "2")
    assert "reduceOnly" not in sent
    assert outcome.status is OutcomeStatus.EXECUTED
    assert set(account.positions) == {("ETHUSDT", "LONG")}


def test_a_position_already_gone_is_executed_without_an_order(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    broker = connected(fake)

    outcome = broker.close(close_order("BTCUSDT:long"), earlier=())

    assert outcome.status is OutcomeStatus.EXECUTED
    assert "no order sent" in outcome.detail
    assert fake.orders_received(account) == []


@pytest.mark.parametrize(
    "lost",
    [Drop(processed=True), ServerError(processed=True), Delay(1.5, processed=True)],
    ids=["dropped", "5xx", "timeout"],
)
def test_an_accepted_order_whose_answer_is_lost_is_found_by_its_client_id(fake, lost):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    fake.script("POST", ORDER, lost)
    order = close_order("BTCUSDT:long")

    outcome = broker.close(order, earlier=())

    assert len(fake.orders_received(account)) == 1
    assert outcome.status is OutcomeStatus.EXECUTED
    assert outcome.close_price == Decimal("60000.00")
    assert outcome.detail.startswith("answer lost (")
    assert client_order_id(order.command_id) in outcome.detail
    assert account.positions == {}


def test_an_order_lost_before_the_exchange_took_it_is_unknown_and_never_sent_twice(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    fake.script("POST", ORDER, Drop(processed=False))

    outcome = broker.close(close_order("BTCUSDT:long"), earlier=())

    assert outcome.status is OutcomeStatus.UNKNOWN
    assert "no order" in outcome.detail
    assert len(fake.orders_received(account)) == 1
    assert ("BTCUSDT", "BOTH") in account.positions


@pytest.mark.parametrize(
    ("refusal", "code"), [(REDUCE_ONLY_REJECTED, "-2022"), (INSUFFICIENT_MARGIN, "-2019")]
)
def test_a_refused_order_fails_with_binances_code_and_message(fake, refusal, code):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    fake.script("POST", ORDER, refusal)

    outcome = broker.close(close_order("BTCUSDT:long"), earlier=())

    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.detail == f"refused: {code} {refusal.msg}"
    assert len(fake.orders_received(account)) == 1


def test_an_earlier_order_found_filled_is_the_outcome_and_nothing_more_is_sent(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    first = close_order("BTCUSDT:long")
    fake.script("POST", ORDER, Drop(processed=True))
    assert broker.close(first, earlier=()).status is OutcomeStatus.EXECUTED
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")  # opened again since, same ticket

    outcome = broker.close(close_order("BTCUSDT:long"), earlier=(first.command_id,))

    assert outcome.status is OutcomeStatus.EXECUTED
    assert client_order_id(first.command_id) in outcome.detail
    assert len(fake.orders_received(account)) == 1
    assert ("BTCUSDT", "BOTH") in account.positions


def test_settle_looks_the_order_up_and_never_sends(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    sent = close_order("BTCUSDT:long")
    fake.script("POST", ORDER, Drop(processed=True))
    broker.close(sent, earlier=())
    restarted = connected(fake)
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")

    found = restarted.settle(sent)
    never_sent = restarted.settle(close_order("BTCUSDT:long"))
    fake.script("GET", ORDER, ServerError(processed=False))
    with pytest.raises(BrokerUnavailable):
        restarted.settle(sent)

    assert found.status is OutcomeStatus.EXECUTED and found.close_price == Decimal("60000.00")
    assert found.detail.startswith("found after a restart by its client id: ")
    assert never_sent.status is OutcomeStatus.FAILED and "never sent" in never_sent.detail
    assert len(fake.orders_received(account)) == 1


def test_a_failed_reading_reports_nothing_and_the_next_one_still_carries_the_deals(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    broker.read(now())
    fake.close_by_hand(account, "BTCUSDT", "BOTH")
    fake.script("GET", "/fapi/v1/ticker/bookTicker", ServerError(processed=False))

    with pytest.raises(ReadFailed):
        broker.read(now())
    reading = broker.read(now())

    assert [deal["ticket"] for deal in reading.closed_deals] == ["BTCUSDT:long"]


def test_a_rate_limit_is_waited_out_without_sending_anything(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    fake.script("GET", "/fapi/v3/account", RateLimited(retry_after=30))

    with pytest.raises(ReadFailed):
        broker.read(now())
    requests_before = len(fake.requests)
    with pytest.raises(ReadFailed, match="rate limited"):
        broker.read(now())
    outcome = broker.close(close_order("BTCUSDT:long"), earlier=())

    assert len(fake.requests) == requests_before
    assert outcome.status is OutcomeStatus.FAILED and "rate limited" in outcome.detail


def test_connect_refuses_a_wrong_key_and_an_unknown_watched_symbol(fake):
    fake.add_account(KEY, SECRET, "10000")

    with pytest.raises(ValueError, match="-2015"):
        connected(fake, key="someone-else")
    with pytest.raises(ValueError, match="XRPUSDT"):
        connected(fake, watch=("XRPUSDT",))
    fake.script("GET", "/fapi/v1/exchangeInfo", ServerError(processed=False))
    with pytest.raises(BrokerUnavailable):
        connected(fake)


def write_config(tmp_path: Path, accounts: str) -> config.BridgeFile:
    path = tmp_path / "bridge.toml"
    path.write_text('[tradeguard]\nurl = "http://127.0.0.1:8000"\n' + accounts, encoding="utf-8")
    return config.load(path)


def test_the_config_gives_one_binding_per_account_with_secrets_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("BINANCE_SECRET_B", "secret-b")
    (tmp_path / "device-a.secret").write_text("device-secret-a\n", encoding="utf-8")
    file = write_config(
        tmp_path,
        """
[[accounts]]
name = "a"
exchange = "binanceusdm"
api_key = "key-a"
api_secret = "secret-a"
device_id = "dev_a"
secret_file = "device-a.secret"
watch = ["btcusdt"]

[[accounts]]
name = "b"
exchange = "binanceusdm"
api_key = "key-b"
api_secret_env = "BINANCE_SECRET_B"
device_id = "dev_b"
secret = "device-secret-b"
api_url = "http://127.0.0.1:9"
history_hours = 2
""",
    )

    first, second = bindings_from_config(file)

    assert (first.name, first.device.device_id, first.device.secret) == ("a", "dev_a", "device-secret-a")
    assert (second.device.device_id, second.device.secret) == ("dev_b", "device-secret-b")
    assert first.broker.description == "binanceusdm account a"
    assert "secret-b" not in repr(second) and "key-b" not in repr(second)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('exchange = "kraken"', "exchange must be one of"),
        ('exchange = "binanceusdm"\napi_secrett = "x"', "accounts[0].api_secrett is not a setting"),
        ('exchange = "binanceusdm"\nhistory_hours = 200', "history_hours"),
        ('exchange = "binanceusdm"\nwatch = "BTCUSDT"', "watch must be a list"),
    ],
)
def test_config_mistakes_name_the_key(tmp_path, entry, message):
    file = write_config(
        tmp_path,
        f'[[accounts]]\nname = "a"\napi_key = "k"\napi_secret = "s"\ndevice_id = "d"\nsecret = "x"\n{entry}\n',
    )

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bindings_from_config(file)


def test_two_accounts_with_one_name_are_refused(tmp_path):
    entry = '[[accounts]]\nname = "a"\nexchange = "binanceusdm"\napi_key = "k"\napi_secret = "s"\ndevice_id = "d"\nsecret = "x"\n'
    file = write_config(tmp_path, entry + entry)

    with pytest.raises(ConfigError, match="unique"):
        bindings_from_config(file)


def test_a_reading_with_nothing_changed_skips_the_trade_history(fake):
    account = fake.add_account(KEY, SECRET, "10000")
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.100")
    broker = connected(fake)
    broker.read(now())
    broker.read(now())  # the reading after a change reads the history once more

    before = len(fake.requests)
    fake.set_price("BTCUSDT", bid="60100.00", ask="60100.10")  # equity moves, the wallet does not
    quiet = broker.read(now())
    quiet_paths = [request.path for request in fake.requests[before:]]
    fake.close_by_hand(account, "BTCUSDT", "BOTH")
    before = len(fake.requests)
    closing = broker.read(now())
    closing_paths = [request.path for request in fake.requests[before:]]

    assert quiet_paths == ["/fapi/v3/account", "/fapi/v3/positionRisk", "/fapi/v1/ticker/bookTicker"]
    assert quiet.snapshot["positions"][0]["current_price"] == Decimal("60100.00")
    assert closing_paths.count("/fapi/v1/userTrades") == 2  # BTCUSDT, which it held, and SOLUSDT, watched
    assert [deal["ticket"] for deal in closing.closed_deals] == ["BTCUSDT:long"]


def test_without_ccxt_installed_the_config_says_how_to_install_it(tmp_path, monkeypatch):
    file = write_config(
        tmp_path,
        '[[accounts]]\nname = "a"\nexchange = "binanceusdm"\napi_key = "k"\napi_secret = "s"\n'
        'device_id = "d"\nsecret = "x"\n',
    )
    monkeypatch.setitem(sys.modules, "ccxt", None)
    monkeypatch.delitem(sys.modules, "tradeguard.bridges.exchange.binance_usdm")

    with pytest.raises(ConfigError, match=r'pip install "tradeguard\[ccxt\]"'):
        bindings_from_config(file)
