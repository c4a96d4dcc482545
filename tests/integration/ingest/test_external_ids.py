"""Tickets and logins follow one rule in every body: a non-negative integer (MT5) or a non-empty string (exchanges)."""

from __future__ import annotations

import pytest

from tests.support.bridging import Follower, position, register_follower, snapshot
from tradeguard.bridges.client import SNAPSHOTS_PATH

RULE = "must be a non-negative integer (an MT5 ticket or login) or a non-empty string"
REFUSED = {"true": True, "negative": -5, "fractional": 50000001.0, "list": [50000001], "object": {"id": 1}}


@pytest.fixture
async def follower(api, alice) -> Follower:
    return await register_follower(api, alice)


async def _send_snapshot_with_ticket(follower: Follower, ticket):
    return await follower.bridge.request("POST", SNAPSHOTS_PATH, snapshot(position(ticket)))


async def _record_trade_with_ticket(follower: Follower, ticket):
    body = {"trade_id": "T1", "symbol": "EURUSD", "side": "buy", "volume": "0.1", "entry_price": "1.085"}
    return await follower.owner.post(
        f"/api/v1/accounts/{follower.account_id}/trades", json={**body, "ticket": ticket}
    )


async def _create_account_with_login(follower: Follower, login):
    return await follower.owner.post("/api/v1/accounts", json={"name": "Follower", "login": login})


async def _synced_tickets(follower: Follower) -> list[str]:
    positions = (await follower.owner.get("/api/v1/positions/open", account_id=follower.account_id)).json()
    return [held["ticket"] for held in positions["positions"]]


async def _recorded_tickets(follower: Follower) -> list[str]:
    trades = (await follower.owner.get(f"/api/v1/accounts/{follower.account_id}/trades")).json()["trades"]
    return [trade["ticket"] for trade in trades]


async def _logins(follower: Follower) -> list[str]:
    accounts = (await follower.owner.get("/api/v1/accounts", limit=500)).json()["accounts"]
    return [account["login"] for account in accounts if account["login"] is not None]


BODIES = {
    "snapshot-ticket": (_send_snapshot_with_ticket, "positions.0.ticket", _synced_tickets),
    "trade-ticket": (_record_trade_with_ticket, "ticket", _recorded_tickets),
    "account-login": (_create_account_with_login, "login", _logins),
}


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.parametrize(("send", "field", "stored"), BODIES.values(), ids=BODIES.keys())
async def test_anything_but_a_non_negative_integer_or_a_string_is_refused_naming_the_rule(
    follower, send, field, stored, value
):
    before = await stored(follower)

    response = await send(follower, value)

    assert response.status_code == 422, response.text
    assert f"{field}: {RULE}" in response.json()["detail"]
    assert await stored(follower) == before


@pytest.mark.parametrize(("send", "field", "stored"), BODIES.values(), ids=BODIES.keys())
async def test_an_empty_string_is_refused(follower, send, field, stored):
    before = await stored(follower)

    response = await send(follower, "")

    assert response.status_code == 422, response.text
    assert f"{field}: String should have at least 1 character" in response.json()["detail"]
    assert await stored(follower) == before


@pytest.mark.parametrize("value", [50000001, "50000001", 0, "ETH-PERP:7f3a"])
@pytest.mark.parametrize(("send", "field", "stored"), BODIES.values(), ids=BODIES.keys())
async def test_an_integer_or_a_string_is_accepted_and_kept_as_a_string(follower, send, field, stored, value):
    response = await send(follower, value)

    assert response.status_code in (200, 201), response.text
    assert str(value) in await stored(follower)


async def test_an_integer_ticket_and_the_same_ticket_as_a_string_are_one_position(follower):
    await follower.expect("T1", ticket=50000001)

    summary = await follower.bridge.send_snapshot(snapshot(position("50000001")))

    assert (summary["matched_positions"], summary["divergences_detected"]) == (1, 0)
