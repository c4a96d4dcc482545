"""Every request body alike: a 422 lists each problem at the path of its field, unknown fields are
refused on every endpoint, and null for a field that may be left out is taken as left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.bridging import Follower, position, register_follower, snapshot
from tradeguard.bridges.client import COMMANDS_PATH, SNAPSHOTS_PATH

ACCOUNTS = "/api/v1/accounts"
EXTRA = "Extra inputs are not permitted"


@pytest.fixture(scope="module")
async def follower(api) -> Follower:
    return await register_follower(api)


def guard_config_url(follower: Follower) -> str:
    return f"{ACCOUNTS}/{follower.account_id}/guard-config"


def a_trade(**fields) -> dict:
    return {
        "trade_id": f"T-{datetime.now(UTC).timestamp()}",
        "symbol": "EURUSD",
        "side": "buy",
        "volume": "0.10",
        "entry_price": "1.08500",
        **fields,
    }


def unprocessable(*errors: tuple[list, str, str]) -> dict:
    """The body of a 422 with these `(loc, msg, type)` errors, in this order."""
    return {
        "detail": "; ".join(f"{'.'.join(str(part) for part in loc)}: {msg}" for loc, msg, _ in errors),
        "errors": [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in errors],
    }


async def put_guard_config(follower: Follower, changes: dict):
    return await follower.owner.put(guard_config_url(follower), json=changes)


async def send_snapshot(follower: Follower, body: dict):
    return await follower.bridge.request("POST", SNAPSHOTS_PATH, body)


GUARD_CONFIG_ERRORS = {
    "warning-above-critical": (
        {"drawdown_warning_pct": 25},
        [(["body", "drawdown_warning_pct"], "must be below drawdown_critical_pct (20)", "value_error")],
    ),
    "two-pairs-at-once": (
        {"gap_warning_pct": 10, "spread_critical_pct": "0.5"},
        [
            (["body", "gap_warning_pct"], "must be below gap_critical_pct (10)", "value_error"),
            (["body", "spread_warning_pct"], "must be below spread_critical_pct (0.5)", "value_error"),
        ],
    ),
    "unknown-time-zone": (
        {"daily_reset_tz": "Mars/Olympus_Mons"},
        [(["body", "daily_reset_tz"], "unknown time zone 'Mars/Olympus_Mons'", "value_error")],
    ),
    "reset-time": (
        {"daily_reset_time": "noon"},
        [(["body", "daily_reset_time"], "must be a time of day as HH:MM", "value_error")],
    ),
    "negative-min-equity": (
        {"min_equity": -1},
        [(["body", "min_equity"], "Input should be greater than or equal to 0", "greater_than_equal")],
    ),
}


@pytest.mark.parametrize(("changes", "errors"), GUARD_CONFIG_ERRORS.values(), ids=GUARD_CONFIG_ERRORS.keys())
async def test_guard_config_errors_are_listed_at_their_fields(follower, changes, errors):
    response = await put_guard_config(follower, changes)

    assert response.status_code == 422, response.text
    assert response.json() == unprocessable(*errors)


SNAPSHOT_ERRORS = {
    "ticket-twice": (
        snapshot(position(1), position(2), position(1)),
        [
            (
                ["body", "positions", 2, "ticket"],
                "ticket 1 appears twice (also positions.0.ticket)",
                "value_error",
            )
        ],
    ),
    "symbol-quoted-twice": (
        snapshot(quotes=[{"symbol": "EURUSD", "bid": "1.1", "ask": "1.2"}] * 2),
        [
            (
                ["body", "quotes", 1, "symbol"],
                "symbol EURUSD appears twice (also quotes.0.symbol)",
                "value_error",
            )
        ],
    ),
    "ask-below-bid": (
        snapshot(
            quotes=[
                {"symbol": "EURUSD", "bid": "1.1", "ask": "1.2"},
                {"symbol": "GBPUSD", "bid": "1.3", "ask": "1.2"},
            ]
        ),
        [(["body", "quotes", 1, "ask"], "GBPUSD ask 1.2 is below bid 1.3", "value_error")],
    ),
}


@pytest.mark.parametrize(("body", "errors"), SNAPSHOT_ERRORS.values(), ids=SNAPSHOT_ERRORS.keys())
async def test_a_rule_over_several_values_of_a_snapshot_names_the_value_it_refuses(follower, body, errors):
    response = await send_snapshot(follower, body)

    assert response.status_code == 422, response.text
    assert response.json() == unprocessable(*errors)


async def test_a_trade_refused_against_the_servers_clock_lists_its_field(follower):
    ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()

    response = await follower.owner.post(
        f"{ACCOUNTS}/{follower.account_id}/trades", json=a_trade(opened_at=ahead)
    )

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["loc"], error["type"]) == (["body", "opened_at"], "value_error")
    assert "ahead of the server's clock" in error["msg"]
    assert response.json()["detail"] == f"body.opened_at: {error['msg']}"


UNKNOWN_FIELDS = {
    "account": (lambda f: f.owner.post(ACCOUNTS, json={"name": "A", "leverage": 30}), ["body", "leverage"]),
    "guard-config": (lambda f: put_guard_config(f, {"max_leverage": 30}), ["body", "max_leverage"]),
    "rearm": (
        lambda f: f.owner.post(
            f"{ACCOUNTS}/{f.account_id}/guard/rearm", json={"reset_peak": True, "why": "x"}
        ),
        ["body", "why"],
    ),
    "device": (
        lambda f: f.owner.post(f"{ACCOUNTS}/{f.account_id}/devices", json={"device_id": "mine"}),
        ["body", "device_id"],
    ),
    "trade-close": (
        lambda f: f.owner.post(f"{ACCOUNTS}/{f.account_id}/trades/T-none/close", json={"price": "1.1"}),
        ["body", "price"],
    ),
    "trade": (
        lambda f: f.owner.post(f"{ACCOUNTS}/{f.account_id}/trades", json=a_trade(comment="telegram")),
        ["body", "comment"],
    ),
    "snapshot": (lambda f: send_snapshot(f, snapshot(server="Broker-Live")), ["body", "server"]),
    "position": (
        lambda f: send_snapshot(f, snapshot(position(1, external_id="X-7"))),
        ["body", "positions", 0, "external_id"],
    ),
    "quote": (
        lambda f: send_snapshot(
            f, snapshot(quotes=[{"symbol": "EURUSD", "bid": "1.1", "ask": "1.2", "last": "1.15"}])
        ),
        ["body", "quotes", 0, "last"],
    ),
    "acknowledgement": (
        lambda f: f.bridge.request(
            "POST", f"{COMMANDS_PATH}/cmd_none/ack", {"status": "failed", "note": "x"}
        ),
        ["body", "note"],
    ),
}


@pytest.mark.parametrize(("send", "location"), UNKNOWN_FIELDS.values(), ids=UNKNOWN_FIELDS.keys())
async def test_an_unknown_field_is_refused_at_its_path_on_every_endpoint(follower, send, location):
    response = await send(follower)

    assert response.status_code == 422, response.text
    assert response.json() == unprocessable((location, EXTRA, "extra_forbidden"))


async def test_an_endpoint_without_fields_takes_no_body_or_an_empty_one(follower):
    devices = f"{ACCOUNTS}/{follower.account_id}/devices"
    await follower.owner.post(f"{ACCOUNTS}/{follower.account_id}/trades", json=a_trade(trade_id="T-closed"))
    close = f"{ACCOUNTS}/{follower.account_id}/trades/T-closed/close"

    answers = [await follower.owner.post(url, json=body) for url in (devices, close) for body in (None, {})]

    assert [answer.status_code for answer in answers] == [201, 201, 200, 200]


async def test_null_leaves_an_account_field_out(follower):
    response = await follower.owner.post(
        ACCOUNTS, json={"name": "Nulls", "broker": None, "login": None, "currency": None}
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["broker"], created["login"], created["currency"]) == (None, None, "USD")


async def test_null_keeps_a_guard_setting_unless_null_is_one_of_its_values(api):
    follower = await register_follower(api)
    await put_guard_config(
        follower, {"auto_close_drawdown": False, "daily_loss_limit_pct": 5, "min_equity": 250}
    )

    response = await put_guard_config(
        follower, {"auto_close_drawdown": None, "daily_loss_limit_pct": None, "min_equity": None}
    )

    assert response.status_code == 200, response.text
    config = response.json()
    assert (config["auto_close_drawdown"], config["daily_loss_limit_pct"], config["min_equity"]) == (
        False,
        None,
        250,
    )
    assert (await follower.owner.get(guard_config_url(follower))).json() == config


async def test_null_for_a_trades_optional_fields_is_accepted(follower):
    nulls = dict.fromkeys(("stop_loss", "take_profit", "ticket", "signal_id", "approval_id", "opened_at"))

    response = await follower.owner.post(f"{ACCOUNTS}/{follower.account_id}/trades", json=a_trade(**nulls))

    assert response.status_code == 201, response.text
    assert {name: response.json()[name] for name in nulls} == nulls


async def test_null_for_a_snapshots_optional_fields_is_accepted_and_defaults_apply(api):
    follower = await register_follower(api)
    held = position(1, profit="10.00", swap=None, commission=None, stop_loss=None, take_profit=None)

    summary = await follower.bridge.send_snapshot(snapshot(held, margin=None, currency=None, quotes=None))

    assert summary["applied"] is True
    [open_position] = (
        await follower.owner.get("/api/v1/positions/open", account_id=follower.account_id)
    ).json()["positions"]
    assert (open_position["unrealized_pnl"], open_position["stop_loss"]) == (10, None)


async def test_null_for_the_optional_fields_of_an_acknowledgement_and_a_rearm_is_accepted(api):
    follower = await register_follower(api)
    await follower.bridge.send_snapshot(snapshot(position(1), equity="10000"))
    [command] = (await follower.bridge.send_snapshot(snapshot(position(1), equity="7900")))["commands"]

    acknowledged = await follower.bridge.acknowledge(
        command["command_id"], "failed", detail=None, close_price=None, profit=None
    )
    rearmed = await follower.owner.post(
        f"{ACCOUNTS}/{follower.account_id}/guard/rearm", json={"reset_peak": None}
    )

    assert acknowledged["state"] == "failed"
    assert rearmed.status_code == 200, rearmed.text
    assert rearmed.json()["drawdown_guard"]["peak_equity"] == 10000
