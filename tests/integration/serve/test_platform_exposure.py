"""The operator's exposure and divergence rates over every follower's account, on every database and cache.

The service is shared by the session's tests, so each test names its own instrument, signal and broker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.builders import NOW, sign_up, write_state
from tradeguard.auth.users import set_role
from tradeguard.store.models import ExpectedTrade

EXPOSURE = "/api/v1/platform/exposure"
RATES = "/api/v1/platform/divergence-rates"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


async def expect_trades(api, account_id: int, *trades: dict) -> None:
    async with api.session() as session:
        for trade in trades:
            session.add(
                ExpectedTrade(
                    **{
                        "account_id": account_id,
                        "symbol": "EURUSD",
                        "side": "buy",
                        "volume": Decimal("0.10"),
                        "entry_price": Decimal("1.08500"),
                        "received_at": datetime.now(UTC) - timedelta(hours=1),
                        "status": "open",
                        "body_digest": "0" * 64,
                        **trade,
                    }
                )
            )
        await session.commit()


def divergence(trade_id: str, reason: str) -> dict:
    return {"event_type": "divergence", "reason": reason, "trade_id": trade_id, "message": reason}


def entry_of(entries: list[dict], key: str, value) -> dict:
    (found,) = [entry for entry in entries if entry[key] == value]
    return found


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_exposure_adds_up_every_followers_positions_per_instrument(api, role):
    operator = await sign_up(api, role)
    dollars = await (await sign_up(api)).new_account(currency="USD")
    euros = await (await sign_up(api)).new_account(currency="EUR")
    symbol = unique("IDX")
    await write_state(
        api,
        dollars,
        positions=[
            {
                "symbol": symbol,
                "volume": Decimal("2"),
                "current_price": Decimal("100"),
                "profit": Decimal("30"),
            },
            {
                "symbol": f"{symbol}.M",
                "side": "sell",
                "volume": Decimal("0.5"),
                "current_price": Decimal("100"),
            },
        ],
    )
    await write_state(
        api,
        euros,
        positions=[
            {
                "symbol": symbol,
                "volume": Decimal("1"),
                "current_price": Decimal("100"),
                "profit": Decimal("-12"),
                "swap": Decimal("-1"),
                "commission": Decimal("-2"),
            }
        ],
    )

    response = await operator.get(EXPOSURE)

    assert response.status_code == 200, response.text
    entry = entry_of(response.json()["symbols"], "symbol", symbol)
    assert entry["broker_symbols"] == [symbol, f"{symbol}.M"]
    assert (entry["net_volume"], entry["gross_volume"]) == (2.5, 3.5)
    # Profit 30 and 10 (the builder's default) in dollars; -12 - 1 - 2 in euros: never one sum.
    assert entry["floating_pnl"] == {"EUR": -15.0, "USD": 40.0}
    assert (entry["positions"], entry["accounts"]) == (3, 2)
    # An index: 1 a lot by default, its quote currency unknown.
    assert entry["one_percent_move_cost"] == 2.5
    assert (entry["cost_currency"], entry["cost_currency_differs"]) == (None, True)


async def test_exposure_per_signal_counts_the_positions_matched_to_its_trades(api):
    operator = await sign_up(api, "admin")
    account_id = await (await sign_up(api)).new_account()
    signal = unique("signal-")
    await expect_trades(
        api,
        account_id,
        {"trade_id": "T1", "signal_id": signal},
        {"trade_id": "T2", "signal_id": signal, "side": "sell"},
        {"trade_id": "T3", "signal_id": None},
    )
    await write_state(
        api,
        account_id,
        positions=[
            {"matched_trade_id": "T1", "volume": Decimal("0.30"), "current_price": Decimal("1.10000")},
            {
                "matched_trade_id": "T2",
                "side": "sell",
                "volume": Decimal("0.10"),
                "current_price": Decimal("1.10000"),
            },
            {"matched_trade_id": "T3", "volume": Decimal("5")},
            {"matched_trade_id": None, "volume": Decimal("7")},
        ],
    )

    body = (await operator.get(EXPOSURE)).json()

    (eurusd,) = entry_of(body["signals"], "signal_id", signal)["symbols"]
    assert (eurusd["symbol"], eurusd["net_volume"], eurusd["gross_volume"]) == ("EURUSD", 0.2, 0.4)
    assert (eurusd["positions"], eurusd["accounts"]) == (2, 1)
    # 0.2 lots × 100,000 EUR × 1.1 USD/EUR × 1 %, in the quote currency, which is the account's.
    assert eurusd["one_percent_move_cost"] == 220.0
    assert (eurusd["cost_currency"], eurusd["cost_currency_differs"]) == ("USD", False)


async def test_divergence_rates_per_signal_and_broker_over_the_window(api):
    operator = await sign_up(api, "owner")
    signal, broker = unique("signal-"), unique("Broker ")
    account_id = await (await sign_up(api)).new_account(broker=broker)
    other_broker = await (await sign_up(api)).new_account(broker=unique("Broker "))
    await expect_trades(
        api,
        account_id,
        {"trade_id": "M", "signal_id": signal},
        {"trade_id": "P", "signal_id": signal},
        {"trade_id": "V", "signal_id": signal},
        {"trade_id": "S", "signal_id": signal},
        {"trade_id": "OK", "signal_id": signal},
        {"trade_id": "OLD", "signal_id": signal, "received_at": datetime.now(UTC) - timedelta(days=8)},
    )
    await expect_trades(api, other_broker, {"trade_id": "M", "signal_id": signal})
    await write_state(
        api,
        account_id,
        events=[
            divergence("M", "missing_on_broker"),
            # Logged again after a resolution: still one trade that failed to arrive.
            divergence("M", "missing_on_broker"),
            divergence("P", "partial_fill"),
            divergence("V", "volume_mismatch"),
            divergence("S", "entry_slippage"),
            divergence("S", "sl_mismatch"),
            divergence("OLD", "missing_on_broker"),
            {"event_type": "matched", "trade_id": "OK", "message": "matched"},
            {"event_type": "resolved", "reason": "entry_slippage", "trade_id": "OK", "message": "resolved"},
        ],
    )
    await write_state(api, other_broker, events=[divergence("M", "missing_on_broker")])

    response = await operator.get(RATES)

    assert response.status_code == 200, response.text
    body = response.json()
    by_signal = entry_of(body["signals"], "signal_id", signal)
    assert {name: by_signal[name] for name in ("expected", "missing", "partial", "slipped")} == {
        "expected": 6,
        "missing": 2,
        "partial": 2,
        "slipped": 1,
    }
    assert (by_signal["missing_rate"], by_signal["partial_rate"], by_signal["slipped_rate"]) == (
        0.3333,
        0.3333,
        0.1667,
    )
    by_broker = entry_of(body["brokers"], "broker", broker)
    assert (by_broker["expected"], by_broker["missing"], by_broker["missing_rate"]) == (5, 1, 0.2)

    widened = (await operator.get(RATES, since=(datetime.now(UTC) - timedelta(days=9)).isoformat())).json()
    assert entry_of(widened["brokers"], "broker", broker)["missing"] == 2


async def test_divergence_rates_refuse_a_since_that_is_no_time(api):
    operator = await sign_up(api, "owner")

    response = await operator.get(RATES, since="last tuesday")

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["query", "since"]]


@pytest.mark.parametrize("path", [EXPOSURE, RATES])
async def test_a_follower_never_sees_the_platforms_numbers(api, path):
    follower = await sign_up(api)
    account_id = await follower.new_account()
    await write_state(api, account_id, positions=[{}])

    response = await follower.get(path)

    assert response.status_code == 404
    assert "volume" not in response.text


@pytest.mark.parametrize("path", [EXPOSURE, RATES])
async def test_a_role_taken_away_refuses_the_next_request(api, path):
    operator = await sign_up(api, "admin")
    assert (await operator.get(path)).status_code == 200

    async with api.session() as session:
        await set_role(session, api.services.cache, operator.email, "user")

    response = await operator.get(path)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("token revoked")


async def test_exposure_is_fresh_after_a_write(api):
    operator = await sign_up(api, "owner")
    account_id = await (await sign_up(api)).new_account()
    symbol = unique("IDX")
    await write_state(api, account_id, positions=[{"symbol": symbol, "volume": Decimal("1")}])
    assert entry_of((await operator.get(EXPOSURE)).json()["symbols"], "symbol", symbol)["gross_volume"] == 1

    await write_state(
        api, account_id, positions=[{"symbol": symbol, "volume": Decimal("2"), "opened_at": NOW}]
    )

    assert entry_of((await operator.get(EXPOSURE)).json()["symbols"], "symbol", symbol)["gross_volume"] == 3
