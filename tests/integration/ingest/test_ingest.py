"""Signed snapshots through the real HTTP path: every divergence reason, refusals, read-after-write."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.bridging import STATUS, Follower, position, register_follower, snapshot
from tests.support.builders import sign_up
from tradeguard.bridges.client import SNAPSHOTS_PATH, BridgeClient, BridgeError, encode_body
from tradeguard.store.instruments import set_instrument


@pytest.fixture
async def follower(api) -> Follower:
    return await register_follower(api)


async def test_identical_sides_are_healthy_with_every_position_matched(follower):
    await follower.expect("T1")
    await follower.expect("T2", symbol="USDJPY", side="sell", entry_price="150.250")

    summary = await follower.bridge.send_snapshot(
        snapshot(
            position(1),
            position(2, symbol="USDJPY", side="sell", open_price="150.250", current_price="150.1"),
        )
    )

    assert summary["applied"] is True
    assert (summary["status"], summary["matched_positions"], summary["divergences_detected"]) == (
        "healthy",
        2,
        0,
    )
    status = await follower.status()
    assert (status["status"], status["open_positions_count"], status["total_syncs"]) == ("healthy", 2, 1)
    assert {event["event_type"] for event in await follower.events()} == {"matched"}


@pytest.mark.parametrize(
    ("trade", "broker_position", "reason"),
    [
        ({}, None, "missing_on_broker"),
        (None, {}, "unexpected_on_broker"),
        ({}, {"volume": "0.05"}, "partial_fill"),
        ({}, {"volume": "0.20"}, "volume_mismatch"),
        ({}, {"open_price": "1.08530"}, "entry_slippage"),
        ({"stop_loss": "1.08000"}, {"stop_loss": "1.07900"}, "sl_mismatch"),
        ({"take_profit": "1.09000"}, {"take_profit": "1.09500"}, "tp_mismatch"),
    ],
)
async def test_each_divergence_reason_is_reported_and_logged(follower, trade, broker_position, reason):
    if trade is not None:
        await follower.expect("T1", **trade)
    positions = [position(7, **broker_position)] if broker_position is not None else []

    summary = await follower.bridge.send_snapshot(snapshot(*positions))

    assert summary["status"] == "warning"
    assert summary["divergences_detected"] == 1
    assert summary["divergences"][0]["reasons"] == [reason]
    assert summary["matched_positions"] == 0
    [event] = await follower.events(event_type="divergence")
    assert event["reason"] == reason
    assert event["message"] == summary["divergences"][0]["message"]
    assert (await follower.status())["divergences_detected"] == 1


async def test_slippage_is_measured_in_pips_of_the_symbol(follower):
    await follower.expect("EU", entry_price="1.08500")
    await follower.expect("UJ", symbol="USDJPY", entry_price="150.000")

    summary = await follower.bridge.send_snapshot(
        snapshot(
            position(1, open_price="1.08515"),
            position(2, symbol="USDJPY", open_price="150.015", current_price="150.02"),
        )
    )

    assert summary["divergences_detected"] == 0
    assert summary["matched_positions"] == 2


async def test_a_young_expected_trade_is_pending_not_missing(follower):
    await follower.expect("T1", opened_at=datetime.now(UTC).isoformat())

    summary = await follower.bridge.send_snapshot(snapshot())

    assert summary["pending_trades"] == 1
    assert summary["divergences_detected"] == 0
    assert summary["status"] == "healthy"


async def test_a_position_leaving_the_broker_is_logged_with_its_pnl_and_closes_the_trade(follower):
    await follower.expect("T1")
    await follower.bridge.send_snapshot(snapshot(position(1, profit="-12.50")))

    summary = await follower.bridge.send_snapshot(snapshot())

    assert summary["closed_on_broker"] == ["1"]
    assert summary["status"] == "idle"
    [closed] = await follower.events(event_type="closed_on_broker")
    assert (closed["ticket"], closed["trade_id"]) == ("1", "T1")
    assert Decimal(closed["details"]["net_profit"]) == Decimal("-12.50")
    trades = (
        await follower.owner.get(f"/api/v1/accounts/{follower.account_id}/trades", status="closed")
    ).json()
    assert [trade["trade_id"] for trade in trades["trades"]] == ["T1"]


async def test_the_log_records_changes_not_the_same_state_again(follower):
    await follower.expect("T1")
    for _ in range(3):
        await follower.bridge.send_snapshot(snapshot(position(1, volume="0.05")))
    events_while_unchanged = await follower.events()

    await follower.bridge.send_snapshot(snapshot(position(1)))
    events_after_fix = await follower.events()

    assert [event["event_type"] for event in events_while_unchanged] == ["divergence", "matched"]
    assert [event["event_type"] for event in events_after_fix][:1] == ["resolved"]
    assert events_after_fix[0]["reason"] == "partial_fill"
    assert (await follower.status())["total_syncs"] == 4


async def test_an_older_snapshot_is_acknowledged_and_changes_nothing(follower):
    now = datetime.now(UTC)
    await follower.bridge.send_snapshot(snapshot(position(1), taken_at=now))

    late = await follower.bridge.send_snapshot(snapshot(taken_at=now - timedelta(seconds=5)))

    assert late["applied"] is False
    status = await follower.status()
    assert (status["total_syncs"], status["open_positions_count"]) == (1, 1)


async def test_a_snapshot_taken_in_the_future_is_refused_saying_by_how_much_and_stores_nothing(follower):
    two_hours_fast = datetime.now(UTC) + timedelta(hours=2)

    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(snapshot(position(1), taken_at=two_hours_fast))
    right = await follower.bridge.send_snapshot(snapshot(position(1)))

    assert refused.value.status_code == 422
    lead = re.search(r"taken_at: \S+ is ([\d.]+) s ahead of the server's clock", refused.value.detail)
    assert lead and 7190 < float(lead.group(1)) <= 7200, refused.value.detail
    assert right["applied"] is True
    assert (await follower.status())["total_syncs"] == 1


async def test_a_position_opened_in_broker_server_time_is_refused_not_stored_as_unexpected(follower):
    # A GMT+2 broker's 14:00 sent as if it were UTC: two hours in the future.
    server_time_as_utc = datetime.now(UTC) + timedelta(hours=2)
    opened_in_server_time = position(1, opened_at=server_time_as_utc.replace(microsecond=0).isoformat())

    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(snapshot(opened_in_server_time))

    assert refused.value.status_code == 422
    assert "positions.0.opened_at:" in refused.value.detail
    assert "s ahead of the server's clock" in refused.value.detail
    await _nothing_stored(follower)
    assert await follower.events() == []


async def test_a_time_a_little_ahead_within_the_tolerance_is_accepted(follower):
    a_little_fast = datetime.now(UTC) + timedelta(seconds=2)

    summary = await follower.bridge.send_snapshot(
        snapshot(position(1, opened_at=a_little_fast.isoformat()), taken_at=a_little_fast)
    )

    assert summary["applied"] is True
    assert 0 < summary["clock_offset_seconds"] <= 2


async def test_the_tolerance_is_a_setting(api, follower):
    policy = api.services.ingest_policy
    api.services.ingest_policy = dataclasses.replace(policy, clock_skew_tolerance=timedelta(minutes=10))
    try:
        summary = await follower.bridge.send_snapshot(
            snapshot(taken_at=datetime.now(UTC) + timedelta(minutes=2))
        )
    finally:
        api.services.ingest_policy = policy

    assert summary["applied"] is True


async def test_every_answer_says_how_far_the_bridge_clock_is_from_the_server_s(follower):
    now = datetime.now(UTC)
    applied = await follower.bridge.send_snapshot(snapshot(taken_at=now - timedelta(seconds=60)))
    ignored = await follower.bridge.send_snapshot(snapshot(taken_at=now - timedelta(hours=1)))

    assert applied["applied"] is True and ignored["applied"] is False
    assert -120 < applied["clock_offset_seconds"] <= -60
    assert -3660 < ignored["clock_offset_seconds"] <= -3600


async def test_a_snapshot_in_another_currency_than_its_account_s_is_refused_and_stores_nothing(follower):
    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(snapshot(position(1), currency="EUR"))

    assert refused.value.status_code == 422
    assert "currency: the snapshot is in EUR but its account is in USD" in refused.value.detail
    await _nothing_stored(follower)


async def test_a_snapshot_in_its_account_s_currency_or_without_one_is_applied(follower):
    in_usd = await follower.bridge.send_snapshot(snapshot(position(1), currency="USD"))
    unsaid = await follower.bridge.send_snapshot(snapshot(position(1)))

    assert in_usd["applied"] is True and unsaid["applied"] is True


async def test_a_read_right_after_an_ingest_shows_the_new_state(follower):
    assert (await follower.status())["total_syncs"] == 0
    positions_before = (await follower.owner.get("/api/v1/positions/open")).json()

    await follower.bridge.send_snapshot(snapshot(position(1)))

    assert (await follower.status())["total_syncs"] == 1
    assert (await follower.owner.get(STATUS)).json()["open_positions_count"] == 1
    assert positions_before["total_positions"] == 0
    assert (await follower.owner.get("/api/v1/positions/open")).json()["total_positions"] == 1


async def _raw_post(follower: Follower, headers: dict, body: bytes):
    return await follower.bridge._http.post(SNAPSHOTS_PATH, content=body, headers=headers)


async def _nothing_stored(follower: Follower) -> None:
    status = await follower.status()
    assert status["total_syncs"] == 0
    assert status["open_positions_count"] == 0


def _tamper(headers: dict, **changes) -> dict:
    return {**headers, **changes}


@pytest.mark.parametrize(
    "break_request",
    [
        pytest.param(lambda h, b: (_tamper(h, **{"X-Signature": "0" * 64}), b), id="bad-signature"),
        pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != "X-Nonce"}, b), id="missing-nonce"),
        pytest.param(lambda h, b: (_tamper(h, **{"X-Device-Id": "dev_unknown"}), b), id="unknown-device"),
        pytest.param(lambda h, b: (h, b.replace(b"10010", b"99999")), id="body-changed-after-signing"),
        pytest.param(lambda h, b: (_tamper(h, **{"X-Timestamp": "abc"}), b), id="junk-timestamp"),
    ],
)
async def test_a_request_that_fails_the_signature_check_is_refused_and_stores_nothing(
    follower, break_request
):
    body = encode_body(snapshot(position(1)))
    headers, body = break_request(follower.bridge.signed_headers("POST", SNAPSHOTS_PATH, body), body)

    response = await _raw_post(follower, headers, body)

    assert response.status_code == 401
    assert response.json()["detail"]
    await _nothing_stored(follower)


@pytest.mark.parametrize("skew", [-301, 301])
async def test_a_timestamp_more_than_300_seconds_off_is_refused(api, skew):
    follower = await register_follower(api)
    skewed = BridgeClient(
        api.http,
        device_id=follower.device_id,
        secret=follower.secret,
        clock=lambda: datetime.now(UTC).timestamp() + skew,
    )

    with pytest.raises(BridgeError) as refused:
        await skewed.send_snapshot(snapshot(position(1)))

    assert refused.value.status_code == 401
    await _nothing_stored(follower)


def _unix_now(offset_seconds: int = 0) -> str:
    return str(int(datetime.now(UTC).timestamp()) + offset_seconds)


@pytest.mark.parametrize(
    ("timestamp", "says"),
    [
        pytest.param(lambda: _unix_now() + ".5", "X-Timestamp must be whole unix seconds", id="fractional"),
        pytest.param(lambda: "1764072005e0", "X-Timestamp must be whole unix seconds", id="exponent"),
        pytest.param(lambda: "\u00b2", "X-Timestamp must be whole unix seconds", id="superscript-digit"),
        pytest.param(lambda: "9" * 5000, "X-Timestamp must be whole unix seconds", id="thousands-of-digits"),
        pytest.param(lambda: "", "missing device signature headers: X-Timestamp", id="missing"),
        pytest.param(
            lambda: _unix_now(3600), "s ahead of the server's clock, more than the 300 s", id="ahead"
        ),
        pytest.param(
            lambda: _unix_now(-3600), "s behind the server's clock, more than the 300 s", id="behind"
        ),
    ],
)
async def test_a_wrong_timestamp_is_refused_saying_what_is_wrong(follower, timestamp, says):
    body = encode_body(snapshot(position(1)))
    headers = follower.bridge.signed_headers("POST", SNAPSHOTS_PATH, body)
    headers["X-Timestamp"] = timestamp().encode("latin-1")

    response = await _raw_post(follower, headers, body)

    assert response.status_code == 401
    assert says in response.json()["detail"]
    await _nothing_stored(follower)


async def test_a_replayed_request_is_refused(follower):
    body = encode_body(snapshot(position(1)))
    headers = follower.bridge.signed_headers("POST", SNAPSHOTS_PATH, body)

    first = await _raw_post(follower, headers, body)
    replay = await _raw_post(follower, headers, body)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["detail"] == "nonce already used"
    assert (await follower.status())["total_syncs"] == 1


async def test_a_revoked_device_is_refused(follower):
    response = await follower.owner.api.http.delete(
        f"/api/v1/accounts/{follower.account_id}/devices/{follower.device_id}", headers=follower.owner.headers
    )

    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(snapshot(position(1)))

    assert response.status_code == 204
    assert refused.value.status_code == 401
    await _nothing_stored(follower)


async def test_a_device_revoked_after_it_sent_snapshots_is_refused_on_its_next_request(follower):
    await follower.bridge.send_snapshot(snapshot(position(1)))
    response = await follower.owner.api.http.delete(
        f"/api/v1/accounts/{follower.account_id}/devices/{follower.device_id}", headers=follower.owner.headers
    )

    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(snapshot(position(1, current_price="1.0900")))

    assert response.status_code == 204
    assert refused.value.status_code == 401
    assert refused.value.detail == "unknown or revoked device"
    assert (await follower.status())["total_syncs"] == 1


async def test_a_device_secret_is_shown_once_and_never_again(follower):
    listing = await follower.owner.get(f"/api/v1/accounts/{follower.account_id}/devices")

    assert listing.status_code == 200
    assert [device["device_id"] for device in listing.json()] == [follower.device_id]
    assert follower.secret not in listing.text
    async with follower.owner.api.session() as session:
        from sqlalchemy import select

        from tradeguard.store.models import Device

        stored = await session.scalar(
            select(Device.secret_ciphertext).where(Device.device_id == follower.device_id)
        )
    assert follower.secret not in stored


async def test_another_users_account_cannot_get_a_device(api, follower):
    stranger = await sign_up(api)

    response = await stranger.post(f"/api/v1/accounts/{follower.account_id}/devices")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s["positions"][0].update(volume="NaN"), "positions.0.volume"),
        (lambda s: s["positions"][0].update(open_price="Infinity"), "positions.0.open_price"),
        (lambda s: s["positions"][0].update(volume="-0.1"), "positions.0.volume"),
        (lambda s: s["positions"].append(position(1)), "ticket 1 appears twice"),
        (
            lambda s: s["quotes"].append({"symbol": "GBPUSD", "bid": "1.3", "ask": "1.2"}),
            "ask 1.2 is below bid 1.3",
        ),
        (lambda s: s["quotes"].append({"symbol": "GBPUSD", "bid": "0", "ask": "1.2"}), "quotes.1.bid"),
        (lambda s: s.update(taken_at="2026-11-25T12:00:00"), "taken_at"),
        (lambda s: s["positions"][0].update(side="long"), "positions.0.side"),
        (lambda s: s.update(equity="abc"), "equity"),
        (lambda s: s.pop("balance"), "balance"),
    ],
)
async def test_an_invalid_snapshot_answers_422_naming_the_field_and_stores_nothing(sqlite_api, change, field):
    follower = await register_follower(sqlite_api)
    body = snapshot(position(1))
    change(body)

    with pytest.raises(BridgeError) as refused:
        await follower.bridge.send_snapshot(body)

    assert refused.value.status_code == 422
    assert field in refused.value.detail
    await _nothing_stored(follower)


async def test_a_body_that_is_not_json_answers_422(sqlite_api):
    follower = await register_follower(sqlite_api)
    body = b"{not json"

    response = await _raw_post(follower, follower.bridge.signed_headers("POST", SNAPSHOTS_PATH, body), body)

    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


async def test_metatrader_zero_stops_mean_none_and_integer_tickets_are_accepted(sqlite_api):
    follower = await register_follower(sqlite_api)

    await follower.bridge.send_snapshot(snapshot(position(123456789, stop_loss=0, take_profit=0.0)))

    [held] = (await follower.owner.get("/api/v1/positions/open")).json()["positions"]
    assert (held["ticket"], held["stop_loss"], held["take_profit"]) == ("123456789", None, None)


async def test_an_instrument_override_changes_what_two_pips_mean(sqlite_api):
    follower = await register_follower(sqlite_api)
    await follower.expect("G1", symbol="XAUUSD", entry_price="2400.00")
    gold = position(1, symbol="XAUUSD", open_price="2400.15", current_price="2401")
    conventional = await follower.bridge.send_snapshot(snapshot(gold))

    async with sqlite_api.session() as session:
        await set_instrument(session, "XAUUSD", pip_size=Decimal("0.1"), contract_size=Decimal("100"))
        await session.commit()
    await sqlite_api.services.load_instruments()
    overridden = await follower.bridge.send_snapshot(snapshot(gold))
    async with sqlite_api.session() as session:
        await set_instrument(session, "XAUUSD", pip_size=Decimal("0.01"), contract_size=Decimal("100"))
        await session.commit()
    await sqlite_api.services.load_instruments()

    assert conventional["divergences"][0]["reasons"] == ["entry_slippage"]
    assert overridden["divergences_detected"] == 0
