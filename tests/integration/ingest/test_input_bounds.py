"""Values the database cannot hold are refused where requests are validated: a 422 naming the field, nothing stored.

PostgreSQL's text holds no NUL character, NUMERIC(28, 10) no more than 18 digits before the point,
a timestamp no year outside 1 to 9999 and a BIGINT no more than 64 bits; each of these, sent to
any endpoint, is a 422 on every database instead of a database error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.support.bridging import Follower, position, register_follower, snapshot
from tradeguard.bridges.client import SNAPSHOTS_PATH, encode_body

NUL = "\x00"
ACCOUNTS = "/api/v1/accounts"


@pytest.fixture
async def follower(api, alice) -> Follower:
    return await register_follower(api, alice)


async def _signed_post(follower: Follower, path_as_signed: str, path_as_sent: str, payload: dict):
    body = encode_body(payload)
    headers = follower.bridge.signed_headers("POST", path_as_signed, body)
    return await follower.owner.api.http.post(path_as_sent, content=body, headers=headers)


async def _trades(follower: Follower) -> list[dict]:
    return (await follower.owner.get(f"{ACCOUNTS}/{follower.account_id}/trades")).json()["trades"]


async def _nothing_synced(follower: Follower) -> bool:
    status = await follower.status()
    return status["total_syncs"] == 0 and await follower.events() == []


async def _reads_nothing(_follower: Follower) -> bool:
    return True


def _query(path: str, name: str) -> Callable[[Follower], Awaitable]:
    return lambda follower: follower.owner.get(path, **{name: f"EUR{NUL}USD"})


def _new_account(**fields) -> Callable[[Follower], Awaitable]:
    return lambda follower: follower.owner.post(ACCOUNTS, json={"name": "Follower", **fields})


def _trade(**fields) -> Callable[[Follower], Awaitable]:
    body = {"trade_id": "T1", "symbol": "EURUSD", "side": "buy", "volume": "0.1", "entry_price": "1.085"}
    return lambda follower: follower.owner.post(
        f"{ACCOUNTS}/{follower.account_id}/trades", json={**body, **fields}
    )


async def _login(follower: Follower):
    return await follower.owner.api.http.post(
        "/api/v1/auth/token", data={"username": follower.owner.email + NUL, "password": "irrelevant"}
    )


async def _snapshot_ticket(follower: Follower):
    return await follower.bridge.request("POST", SNAPSHOTS_PATH, snapshot(position(f"50{NUL}01")))


async def _acknowledgement_detail(follower: Follower):
    path = "/api/v1/ingest/commands/0b5e2f7c-6f0e-4a55-9f3c-2d1b8f9e7a10/ack"
    return await follower.bridge.request("POST", path, {"status": "failed", "detail": f"off{NUL}quotes"})


async def _acknowledged_command_id(follower: Follower):
    return await _signed_post(
        follower,
        f"/api/v1/ingest/commands/c{NUL}1/ack",
        "/api/v1/ingest/commands/c%001/ack",
        {"status": "failed"},
    )


async def _closed_trade_id(follower: Follower):
    return await follower.owner.post(f"{ACCOUNTS}/{follower.account_id}/trades/T%001/close")


async def _revoked_device_id(follower: Follower):
    return await follower.owner.api.http.delete(
        f"{ACCOUNTS}/{follower.account_id}/devices/dev%001", headers=follower.owner.headers
    )


async def _no_account_holds_nul(follower: Follower) -> bool:
    accounts = (await follower.owner.get(ACCOUNTS, limit=500)).json()["accounts"]
    return not any(
        NUL in (account[field] or "") for account in accounts for field in ("name", "broker", "login")
    )


async def _no_trade(follower: Follower) -> bool:
    return await _trades(follower) == []


async def _device_still_signs(follower: Follower) -> bool:
    return (await follower.bridge.send_snapshot(snapshot()))["applied"]


NUL_PLACES = {
    "logs-event-type": (_query("/api/v1/reconciliation/logs", "event_type"), "event_type", _reads_nothing),
    "logs-reason": (_query("/api/v1/reconciliation/logs", "reason"), "reason", _reads_nothing),
    "logs-symbol": (_query("/api/v1/reconciliation/logs", "symbol"), "symbol", _reads_nothing),
    "alerts-kind": (_query("/api/v1/alerts", "kind"), "kind", _reads_nothing),
    "positions-symbol": (_query("/api/v1/positions/open", "symbol"), "symbol", _reads_nothing),
    "login-username": (_login, "username", _reads_nothing),
    "account-name": (_new_account(name=f"Fol{NUL}lower"), "name", _no_account_holds_nul),
    "account-broker": (_new_account(broker=f"IC{NUL}Markets"), "broker", _no_account_holds_nul),
    "account-login": (_new_account(login=f"50{NUL}01"), "login", _no_account_holds_nul),
    "position-ticket": (_snapshot_ticket, "positions.0.ticket", _nothing_synced),
    "acknowledgement-detail": (_acknowledgement_detail, "detail", _nothing_synced),
    "acknowledged-command-id": (_acknowledged_command_id, "command_id", _nothing_synced),
    "trade-ticket": (_trade(ticket=f"50{NUL}01"), "ticket", _no_trade),
    "trade-signal-id": (_trade(signal_id=f"sig{NUL}"), "signal_id", _no_trade),
    "trade-approval-id": (_trade(approval_id=f"ok{NUL}"), "approval_id", _no_trade),
    "closed-trade-id": (_closed_trade_id, "trade_id", _no_trade),
    "revoked-device-id": (_revoked_device_id, "device_id", _device_still_signs),
}


@pytest.mark.parametrize(("send", "field", "nothing_stored"), NUL_PLACES.values(), ids=NUL_PLACES.keys())
async def test_a_nul_character_is_a_422_naming_the_field_and_stores_nothing(
    follower, send, field, nothing_stored
):
    response = await send(follower)

    assert response.status_code == 422, response.text
    assert f"{field}: must not contain the NUL character" in response.json()["detail"]
    assert await nothing_stored(follower)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_equity": 1e30}, "min_equity"),
        ({"min_equity": "1000000000000000000"}, "min_equity"),
        ({"daily_loss_limit_pct": "5.00000000001"}, "daily_loss_limit_pct"),
        ({"entry_slippage_pips": "0.00000000001"}, "entry_slippage_pips"),
    ],
)
async def test_a_number_beyond_what_numeric_28_10_holds_is_a_422_and_changes_nothing(
    follower, changes, field
):
    url = f"{ACCOUNTS}/{follower.account_id}/guard-config"
    before = (await follower.owner.get(url)).json()

    response = await follower.owner.put(url, json=changes)

    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert (await follower.owner.get(url)).json() == before


async def test_the_largest_number_numeric_28_10_holds_is_stored_exactly(follower):
    url = f"{ACCOUNTS}/{follower.account_id}/guard-config"
    largest = "999999999999999999.9999999999"

    response = await follower.owner.put(url, json={"min_equity": largest})

    assert response.status_code == 200, response.text
    assert (await follower.owner.get(url)).status_code == 200


@pytest.mark.parametrize(
    ("send", "field", "nothing_stored"),
    [
        pytest.param(
            lambda f: f.owner.get("/api/v1/reconciliation/logs", since="0001-01-01T00:30:00+01:00"),
            "since",
            _reads_nothing,
            id="logs-since-before-year-1",
        ),
        pytest.param(
            lambda f: f.owner.get("/api/v1/reconciliation/logs", until="9999-12-31T23:30:00-01:00"),
            "until",
            _reads_nothing,
            id="logs-until-after-year-9999",
        ),
        pytest.param(
            lambda f: f.owner.get(f"{ACCOUNTS}/{f.account_id}/equity", since="0001-01-01T00:00:00+00:01"),
            "since",
            _reads_nothing,
            id="equity-since-before-year-1",
        ),
        pytest.param(
            lambda f: f.bridge.request(
                "POST", SNAPSHOTS_PATH, snapshot(position(1, opened_at="0001-01-01T00:00:00+05:00"))
            ),
            "positions.0.opened_at",
            _nothing_synced,
            id="position-opened-before-year-1",
        ),
        pytest.param(
            _trade(opened_at="0001-01-01T01:00:00+02:00"),
            "opened_at",
            _no_trade,
            id="trade-opened-before-year-1",
        ),
    ],
)
async def test_a_time_outside_years_1_to_9999_in_utc_is_a_422_and_stores_nothing(
    follower, send, field, nothing_stored
):
    response = await send(follower)

    assert response.status_code == 422, response.text
    assert f"{field}: must lie within the years 1 to 9999 once converted to UTC" in response.json()["detail"]
    assert await nothing_stored(follower)


async def test_a_query_time_without_a_zone_is_a_422(follower):
    response = await follower.owner.get("/api/v1/reconciliation/logs", since="2026-11-25T12:00:00")

    assert response.status_code == 422, response.text
    assert "since: must carry a time zone" in response.json()["detail"]


@pytest.mark.parametrize("last_event_id", [str(2**63), str(2**64 + 1), "-1", "latest"])
async def test_a_last_event_id_that_no_event_can_have_is_a_422(follower, last_event_id):
    # A stream accepted by mistake never ends: fail instead of waiting for it.
    async with asyncio.timeout(30):
        response = await follower.owner.api.http.get(
            "/api/v1/stream", headers={**follower.owner.headers, "Last-Event-ID": last_event_id}
        )

    assert response.status_code == 422, response.text
    assert "Last-Event-ID" in response.json()["detail"]
