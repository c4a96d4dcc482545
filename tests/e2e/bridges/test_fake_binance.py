"""The stand-in for Binance USDⓈ-M answers ccxt's real `binanceusdm` client as the exchange does."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from tests.support.fake_binance import REDUCE_ONLY_REJECTED, FakeBinance, RateLimited
from tradeguard.bridges.exchange.binance_usdm import binance_error

KEY, SECRET = "fake-api-key-1", "fake-api-secret-1"
BTC = "BTC/USDT:USDT"


@pytest.fixture
def exchange():
    fake = FakeBinance()
    account = fake.add_account(KEY, SECRET, "10000")
    url = fake.start()
    yield fake, account, url
    fake.stop()


def client(url: str, secret: str = SECRET, **options) -> ccxt.binanceusdm:
    exchange = ccxt.binanceusdm(
        {
            "apiKey": KEY,
            "secret": secret,
            "enableRateLimit": True,
            "rateLimit": 1,
            "options": {"fetchCurrencies": False, **options},
        }
    )
    for name, value in exchange.urls["api"].items():
        exchange.urls["api"][name] = url + "/" + value.split("://", 1)[1].partition("/")[2]
    return exchange


def test_markets_balance_positions_and_tickers_come_back_with_binances_fields(exchange):
    fake, account, url = exchange
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.250")
    fake.set_price("BTCUSDT", bid="61000.00", ask="61000.10", mark="61000.05")
    ccxt_client = client(url)

    markets = ccxt_client.load_markets()
    balance = ccxt_client.fetch_balance()["info"]
    [position] = ccxt_client.fetch_positions()
    tickers = ccxt_client.fetch_bids_asks([BTC, "ETH/USDT:USDT"])

    assert {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"} <= set(markets)
    assert markets[BTC]["id"] == "BTCUSDT" and markets[BTC]["linear"] and markets[BTC]["contractSize"] == 1
    # Bought 0.25 at the ask 60000.10, marked at 61000.05: 0.25 * 999.95 = 249.9875 unrealized.
    assert position["info"]["positionAmt"] == "0.250"
    assert position["info"]["entryPrice"] == "60000.10"
    assert position["info"]["unRealizedProfit"] == "249.98750000"
    assert position["side"] == "long"
    usdt = balance["assets"][0]
    commission = Decimal("60000.10") * Decimal("0.250") * Decimal("0.0004")
    assert Decimal(usdt["walletBalance"]) == Decimal("10000") - commission
    assert Decimal(usdt["marginBalance"]) == Decimal(usdt["walletBalance"]) + Decimal("249.9875")
    assert tickers[BTC]["info"]["bidPrice"] == "61000.00" and tickers[BTC]["info"]["askPrice"] == "61000.10"
    assert int(ccxt_client.last_response_headers["X-MBX-USED-WEIGHT-1M"]) > 0


def test_a_reducing_market_order_realizes_its_profit_and_is_found_by_its_client_id(exchange):
    fake, account, url = exchange
    fake.trade_by_hand(account, "ETHUSDT", "SELL", "2.000")  # short at the bid, 3000.00
    fake.set_price("ETHUSDT", bid="2950.00", ask="2950.50")
    ccxt_client = client(url)
    ccxt_client.load_markets()

    placed = ccxt_client.create_order(
        "ETH/USDT:USDT",
        "market",
        "buy",
        "2.000",
        None,
        {"reduceOnly": True, "newClientOrderId": "tg-close-1"},
    )
    found = ccxt_client.fetch_order(None, "ETH/USDT:USDT", {"origClientOrderId": "tg-close-1"})
    fills = ccxt_client.fetch_my_trades("ETH/USDT:USDT", None, 100, {"orderId": placed["info"]["orderId"]})

    assert placed["info"]["status"] == "FILLED" and placed["info"]["avgPrice"] == "2950.50"
    assert found["info"]["orderId"] == placed["info"]["orderId"]
    # Short 2 at 3000.00 bought back at the ask 2950.50: (3000.00 - 2950.50) * 2 = 99.00.
    assert [fill["info"]["realizedPnl"] for fill in fills] == ["99.00000000"]
    assert fills[0]["info"]["commission"] == "2.36040000"  # 2950.50 * 2 * 0.04 %
    assert ccxt_client.fetch_positions() == []
    assert fake.orders_received(account)[0]["reduceOnly"] == "true"


@pytest.mark.parametrize(
    ("attempt", "code"),
    [
        ("duplicate", -4116),
        ("reduce_only_without_position", -2022),
        ("unknown_order", -2013),
        ("wrong_secret", -1022),
        ("hedge_side_in_one_way_mode", -4061),
    ],
)
def test_refusals_carry_binances_codes(exchange, attempt, code):
    fake, account, url = exchange
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.010")
    ccxt_client = client(url, secret="not-the-secret" if attempt == "wrong_secret" else SECRET)
    ccxt_client.load_markets()
    actions = {
        "duplicate": lambda: [
            ccxt_client.create_order(BTC, "market", "sell", "0.005", None, {"newClientOrderId": "tg-dup"})
            for _ in range(2)
        ],
        "reduce_only_without_position": lambda: ccxt_client.create_order(
            "ETH/USDT:USDT", "market", "sell", "1", None, {"reduceOnly": True}
        ),
        "unknown_order": lambda: ccxt_client.fetch_order(None, BTC, {"origClientOrderId": "tg-never-sent"}),
        "wrong_secret": lambda: ccxt_client.fetch_balance(),
        "hedge_side_in_one_way_mode": lambda: ccxt_client.create_order(
            BTC, "market", "sell", "0.010", None, {"positionSide": "LONG"}
        ),
    }
    with pytest.raises(ccxt.BaseError) as raised:
        actions[attempt]()
    assert binance_error(raised.value)[0] == code


def test_a_clock_behind_the_exchange_is_refused_unless_ccxt_measures_the_difference(exchange):
    fake, _, url = exchange
    fake.clock_offset_ms = -4000  # the exchange's clock 4 s behind: every request looks 4 s early

    unadjusted = client(url)
    unadjusted.load_markets()
    with pytest.raises(ccxt.BaseError) as raised:
        unadjusted.fetch_balance()
    adjusted = client(url, adjustForTimeDifference=True)
    adjusted.load_markets()

    assert binance_error(raised.value) == (
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    )
    assert adjusted.fetch_balance()["info"]["assets"][0]["asset"] == "USDT"


def test_scripted_refusals_and_rate_limits_answer_with_their_status(exchange):
    fake, account, url = exchange
    fake.trade_by_hand(account, "BTCUSDT", "BUY", "0.010")
    ccxt_client = client(url)
    ccxt_client.load_markets()
    fake.script("POST", "/fapi/v1/order", REDUCE_ONLY_REJECTED)
    fake.script("GET", "/fapi/v3/account", RateLimited(7))

    with pytest.raises(ccxt.BaseError) as refused:
        ccxt_client.create_order(BTC, "market", "sell", "0.010", None, {"reduceOnly": True})
    with pytest.raises(ccxt.DDoSProtection) as limited:
        ccxt_client.fetch_balance()

    assert binance_error(refused.value) == (-2022, "ReduceOnly Order is rejected.")
    assert binance_error(limited.value)[0] == -1003
    assert ccxt_client.last_response_headers["Retry-After"] == "7"
    assert ("BTCUSDT", "BOTH") in account.positions  # the refused order changed nothing
