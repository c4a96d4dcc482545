"""Expected trades: idempotent recording, races, validation, closing and listing, on every database and cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.builders import sign_up
from tradeguard.cache import account_scope, user_scope


def trades_url(account_id: int) -> str:
    return f"/api/v1/accounts/{account_id}/trades"


def close_url(account_id: int, trade_id: str) -> str:
    return f"{trades_url(account_id)}/{trade_id}/close"


def a_trade(trade_id: str = "sig-42:approval-7", **fields) -> dict:
    """A EURUSD buy as the platform sends it after approving a signal."""
    return {
        "trade_id": trade_id,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": "0.10",
        "entry_price": "1.08500",
        "stop_loss": "1.08000",
        "take_profit": "1.09500",
        "ticket": "5012345",
        "signal_id": "sig-42",
        "approval_id": "approval-7",
        "opened_at": "2026-11-25T12:00:00+00:00",
        **fields,
    }


async def listed_trades(caller, account_id: int, **params) -> list[dict]:
    response = await caller.get(trades_url(account_id), **params)
    assert response.status_code == 200, response.text
    return response.json()["trades"]


async def test_a_new_trade_is_recorded_with_201_and_normalized_fields(alice):
    account_id = await alice.new_account()

    response = await alice.post(trades_url(account_id), json=a_trade(symbol="eurusd.m"))

    assert response.status_code == 201, response.text
    trade = response.json()
    assert isinstance(trade["id"], int)
    assert trade["account_id"] == account_id
    assert trade["trade_id"] == "sig-42:approval-7"
    assert trade["symbol"] == "EURUSD.M"
    assert trade["side"] == "buy"
    assert Decimal(str(trade["volume"])) == Decimal("0.1")
    assert Decimal(str(trade["entry_price"])) == Decimal("1.085")
    assert Decimal(str(trade["stop_loss"])) == Decimal("1.08")
    assert Decimal(str(trade["take_profit"])) == Decimal("1.095")
    assert (trade["ticket"], trade["signal_id"], trade["approval_id"]) == ("5012345", "sig-42", "approval-7")
    assert datetime.fromisoformat(trade["opened_at"]) == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert datetime.fromisoformat(trade["received_at"]).tzinfo is not None
    assert trade["status"] == "open"
    assert trade["closed_at"] is None
    assert await listed_trades(alice, account_id) == [trade]


async def test_only_the_required_fields_are_enough(alice):
    account_id = await alice.new_account()
    body = {"trade_id": "T1", "symbol": "XAUUSD", "side": "sell", "volume": 1, "entry_price": 2650.5}

    response = await alice.post(trades_url(account_id), json=body)

    assert response.status_code == 201, response.text
    trade = response.json()
    assert trade["stop_loss"] is None
    assert trade["take_profit"] is None
    assert trade["ticket"] is None
    assert trade["opened_at"] is None


async def test_the_same_body_again_answers_200_with_the_stored_trade(alice):
    account_id = await alice.new_account()
    first = await alice.post(trades_url(account_id), json=a_trade())

    again = await alice.post(trades_url(account_id), json=a_trade())

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(await listed_trades(alice, account_id)) == 1


async def test_the_same_values_written_differently_are_the_same_body(alice):
    account_id = await alice.new_account()
    first = await alice.post(trades_url(account_id), json=a_trade())
    rewritten = a_trade(
        symbol="eurusd",
        volume=0.1,
        entry_price="1.085",
        stop_loss=1.08,
        take_profit="1.0950000",
        opened_at="2026-11-25T14:00:00+02:00",
    )

    again = await alice.post(trades_url(account_id), json=rewritten)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert len(await listed_trades(alice, account_id)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"volume": "0.11"},
        {"entry_price": "1.08501"},
        {"side": "sell", "stop_loss": "1.09", "take_profit": "1.08"},
        {"symbol": "GBPUSD"},
        {"stop_loss": None},
        {"ticket": "5012346"},
        {"opened_at": "2026-11-25T12:00:01+00:00"},
    ],
    ids=["volume", "entry", "side", "symbol", "dropped-stop", "ticket", "open-time"],
)
async def test_a_different_body_for_a_stored_trade_id_is_a_409_naming_the_trade(alice, change):
    account_id = await alice.new_account()
    first = await alice.post(trades_url(account_id), json=a_trade())

    response = await alice.post(trades_url(account_id), json=a_trade(**change))

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "sig-42:approval-7" in detail
    assert "different body" in detail
    assert await listed_trades(alice, account_id) == [first.json()]


async def test_trade_ids_are_unique_per_account_not_globally(alice):
    first_account = await alice.new_account()
    second_account = await alice.new_account()

    first = await alice.post(trades_url(first_account), json=a_trade())
    second = await alice.post(trades_url(second_account), json=a_trade(volume="0.5"))

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


async def test_concurrent_identical_posts_store_one_trade_and_answer_one_201(alice):
    account_id = await alice.new_account()

    responses = await asyncio.gather(*(alice.post(trades_url(account_id), json=a_trade()) for _ in range(5)))

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await listed_trades(alice, account_id)) == 1


async def test_concurrent_posts_with_different_bodies_store_one_and_refuse_the_rest(alice):
    account_id = await alice.new_account()
    bodies = [a_trade(volume=f"0.{n}") for n in range(1, 6)]

    responses = await asyncio.gather(*(alice.post(trades_url(account_id), json=body) for body in bodies))

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409], [r.text for r in responses]
    stored = await listed_trades(alice, account_id)
    winner = next(r for r in responses if r.status_code == 201)
    assert stored == [winner.json()]


async def test_a_replay_after_the_close_answers_the_closed_trade(alice):
    account_id = await alice.new_account()
    await alice.post(trades_url(account_id), json=a_trade())
    closed = await alice.post(close_url(account_id, "sig-42:approval-7"))

    replay = await alice.post(trades_url(account_id), json=a_trade())

    assert replay.status_code == 200, replay.text
    assert replay.json() == closed.json()
    assert replay.json()["status"] == "closed"


@pytest.mark.parametrize(
    ("side", "stop_loss", "take_profit"),
    [("buy", "1.08", "1.09"), ("sell", "1.09", "1.08"), ("buy", "1.08", None), ("sell", None, "1.08")],
    ids=["buy", "sell", "buy-stop-only", "sell-target-only"],
)
async def test_stops_and_targets_on_the_protective_side_of_entry_are_accepted(
    alice, side, stop_loss, take_profit
):
    account_id = await alice.new_account()
    body = a_trade(side=side, entry_price="1.085", stop_loss=stop_loss, take_profit=take_profit)

    response = await alice.post(trades_url(account_id), json=body)

    assert response.status_code == 201, response.text


async def test_an_open_time_a_little_ahead_of_the_server_clock_is_accepted(alice):
    account_id = await alice.new_account()
    skewed = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()

    response = await alice.post(trades_url(account_id), json=a_trade(opened_at=skewed))

    assert response.status_code == 201, response.text


async def test_an_open_time_a_minute_ahead_of_the_server_clock_is_refused_saying_by_how_much(alice):
    account_id = await alice.new_account()

    response = await alice.post(trades_url(account_id), json=a_trade(opened_at=_future(1)))

    assert response.status_code == 422, response.text
    assert "opened_at: " in response.json()["detail"]
    assert "s ahead of the server's clock" in response.json()["detail"]
    assert await listed_trades(alice, account_id) == []


async def test_another_users_account_answers_404_and_stores_nothing(alice, bob):
    account_id = await alice.new_account()

    recorded = await bob.post(trades_url(account_id), json=a_trade())
    listed = await bob.get(trades_url(account_id))
    closed = await bob.post(close_url(account_id, "sig-42:approval-7"))

    assert (recorded.status_code, listed.status_code, closed.status_code) == (404, 404, 404)
    assert await listed_trades(alice, account_id) == []


async def test_a_closing_attempt_on_another_users_account_leaves_the_trade_open(alice, bob):
    account_id = await alice.new_account()
    await alice.post(trades_url(account_id), json=a_trade())

    response = await bob.post(close_url(account_id, "sig-42:approval-7"))

    assert response.status_code == 404
    assert [t["status"] for t in await listed_trades(alice, account_id)] == ["open"]


async def test_an_unknown_account_answers_404(alice):
    response = await alice.post(trades_url(999_999_999), json=a_trade())

    assert response.status_code == 404
    assert "999999999" in response.json()["detail"]


async def test_an_admin_may_record_on_any_account(api, alice):
    admin = await sign_up(api, role="admin")
    account_id = await alice.new_account()

    response = await admin.post(trades_url(account_id), json=a_trade())

    assert response.status_code == 201, response.text
    assert [t["id"] for t in await listed_trades(alice, account_id)] == [response.json()["id"]]


async def test_recording_requires_a_token(api, alice):
    account_id = await alice.new_account()

    response = await api.http.post(trades_url(account_id), json=a_trade())

    assert response.status_code == 401
    assert await listed_trades(alice, account_id) == []


def _future(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def _without(field: str) -> dict:
    body = a_trade()
    del body[field]
    return body


INVALID_BODIES = {
    "side-long": (a_trade(side="long"), "side"),
    "side-uppercase": (a_trade(side="BUY"), "side"),
    "volume-zero": (a_trade(volume=0), "volume"),
    "volume-negative": (a_trade(volume="-0.1"), "volume"),
    "volume-text": (a_trade(volume="abc"), "volume"),
    "volume-empty": (a_trade(volume=""), "volume"),
    "volume-nan-string": (a_trade(volume="NaN"), "volume"),
    "volume-infinity-string": (a_trade(volume="Infinity"), "volume"),
    "volume-boolean": (a_trade(volume=True), "volume"),
    "volume-too-precise": (a_trade(volume="0.12345678901"), "volume"),
    "volume-too-large": (a_trade(volume="1e18"), "volume"),
    "entry-zero": (a_trade(entry_price="0"), "entry_price"),
    "entry-negative": (a_trade(entry_price=-1.085), "entry_price"),
    "entry-text": (a_trade(entry_price="1,085"), "entry_price"),
    "entry-minus-infinity": (a_trade(entry_price="-Infinity"), "entry_price"),
    "stop-negative": (a_trade(stop_loss="-1.08"), "stop_loss"),
    "stop-zero": (a_trade(stop_loss=0), "stop_loss"),
    "target-text": (a_trade(take_profit="soon"), "take_profit"),
    "buy-stop-above-entry": (a_trade(stop_loss="1.09"), "stop_loss"),
    "buy-stop-at-entry": (a_trade(stop_loss="1.085"), "stop_loss"),
    "buy-target-below-entry": (a_trade(take_profit="1.08"), "take_profit"),
    "buy-target-at-entry": (a_trade(take_profit="1.08500"), "take_profit"),
    "sell-stop-below-entry": (a_trade(side="sell", stop_loss="1.08", take_profit=None), "stop_loss"),
    "sell-target-above-entry": (a_trade(side="sell", stop_loss=None, take_profit="1.09"), "take_profit"),
    "trade-id-empty": (a_trade(trade_id=""), "trade_id"),
    "trade-id-too-long": (a_trade(trade_id="T" * 65), "trade_id"),
    "trade-id-space": (a_trade(trade_id="sig 42"), "trade_id"),
    "trade-id-slash": (a_trade(trade_id="sig/42"), "trade_id"),
    "trade-id-number": (a_trade(trade_id=42), "trade_id"),
    "symbol-empty": (a_trade(symbol=""), "symbol"),
    "symbol-too-long": (a_trade(symbol="E" * 33), "symbol"),
    "symbol-space": (a_trade(symbol="EUR USD"), "symbol"),
    "symbol-punctuation": (a_trade(symbol="EURUSD!"), "symbol"),
    "opened-at-naive": (a_trade(opened_at="2026-11-25T12:00:00"), "opened_at"),
    "opened-at-not-a-time": (a_trade(opened_at="yesterday"), "opened_at"),
    # Fixed, since the table is built when the module is imported, long before a test runs.
    "opened-at-future": (a_trade(opened_at="2999-01-01T00:00:00Z"), "opened_at"),
    "ticket-empty": (a_trade(ticket=""), "ticket"),
    "ticket-too-long": (a_trade(ticket="9" * 65), "ticket"),
    "signal-id-too-long": (a_trade(signal_id="s" * 65), "signal_id"),
    "approval-id-too-long": (a_trade(approval_id="a" * 65), "approval_id"),
    "unknown-field": (a_trade(comment="from telegram"), "comment"),
    "no-trade-id": (_without("trade_id"), "trade_id"),
    "no-symbol": (_without("symbol"), "symbol"),
    "no-side": (_without("side"), "side"),
    "no-volume": (_without("volume"), "volume"),
    "no-entry": (_without("entry_price"), "entry_price"),
}


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
async def test_an_invalid_trade_is_a_422_naming_the_field_and_stores_nothing(sqlite_user, body, field):
    account_id = await sqlite_user.new_account()

    response = await sqlite_user.post(trades_url(account_id), json=body)

    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert await listed_trades(sqlite_user, account_id) == []


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_non_finite_json_numbers_are_a_422(sqlite_user, literal):
    account_id = await sqlite_user.new_account()
    body = (
        b'{"trade_id": "T1", "symbol": "EURUSD", "side": "buy", "volume": '
        + literal
        + b', "entry_price": 1.085}'
    )

    response = await sqlite_user.api.http.post(
        trades_url(account_id),
        content=body,
        headers={**sqlite_user.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert "volume" in response.json()["detail"]
    assert await listed_trades(sqlite_user, account_id) == []


async def test_a_stop_on_the_wrong_side_is_explained(sqlite_user):
    account_id = await sqlite_user.new_account()

    response = await sqlite_user.post(trades_url(account_id), json=a_trade(stop_loss="1.09"))

    assert response.status_code == 422
    assert response.json()["detail"] == "body.stop_loss: must be below entry_price 1.08500 for a buy"


async def test_closing_marks_the_trade_closed_and_closing_again_changes_nothing(alice):
    account_id = await alice.new_account()
    recorded = (await alice.post(trades_url(account_id), json=a_trade())).json()

    first = await alice.post(close_url(account_id, "sig-42:approval-7"))
    second = await alice.post(close_url(account_id, "sig-42:approval-7"))

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    closed = first.json()
    assert closed["id"] == recorded["id"]
    assert closed["status"] == "closed"
    assert datetime.fromisoformat(closed["closed_at"]) >= datetime.fromisoformat(recorded["received_at"])
    assert second.json() == closed
    assert await listed_trades(alice, account_id) == [closed]


async def test_concurrent_closes_agree_on_one_close_time(alice):
    account_id = await alice.new_account()
    await alice.post(trades_url(account_id), json=a_trade())

    responses = await asyncio.gather(
        *(alice.post(close_url(account_id, "sig-42:approval-7")) for _ in range(5))
    )

    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    assert len({r.json()["closed_at"] for r in responses}) == 1


async def test_closing_an_unknown_trade_answers_404(alice):
    account_id = await alice.new_account()

    response = await alice.post(close_url(account_id, "never-sent"))

    assert response.status_code == 404
    assert "never-sent" in response.json()["detail"]


async def test_closing_one_account_s_trade_id_on_another_account_answers_404(alice):
    first_account = await alice.new_account()
    second_account = await alice.new_account()
    await alice.post(trades_url(first_account), json=a_trade())

    response = await alice.post(close_url(second_account, "sig-42:approval-7"))

    assert response.status_code == 404
    assert [t["status"] for t in await listed_trades(alice, first_account)] == ["open"]


async def test_the_list_filters_by_status_newest_first(alice):
    account_id = await alice.new_account()
    for trade_id in ("T1", "T2", "T3", "T4"):
        await alice.post(trades_url(account_id), json=a_trade(trade_id))
    for trade_id in ("T1", "T3"):
        await alice.post(close_url(account_id, trade_id))

    every = [t["trade_id"] for t in await listed_trades(alice, account_id)]
    still_open = [t["trade_id"] for t in await listed_trades(alice, account_id, status="open")]
    closed = [t["trade_id"] for t in await listed_trades(alice, account_id, status="closed")]

    assert every == ["T4", "T3", "T2", "T1"]
    assert still_open == ["T4", "T2"]
    assert closed == ["T3", "T1"]


async def test_the_list_pages_with_a_cursor_until_none_is_left(alice):
    account_id = await alice.new_account()
    for n in range(5):
        await alice.post(trades_url(account_id), json=a_trade(f"T{n}"))

    pages, cursor = [], None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = (await alice.get(trades_url(account_id), **params)).json()
        assert page["account_id"] == account_id
        pages.append([t["trade_id"] for t in page["trades"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == [["T4", "T3"], ["T2", "T1"], ["T0"]]


@pytest.mark.parametrize("params", [{"status": "pending"}, {"limit": 0}, {"limit": 501}, {"cursor": 0}])
async def test_the_list_rejects_bad_parameters(sqlite_user, params):
    account_id = await sqlite_user.new_account()

    response = await sqlite_user.get(trades_url(account_id), **params)

    assert response.status_code == 422
    assert next(iter(params)) in response.json()["detail"]


async def test_recording_and_closing_drop_the_account_s_cached_views(api, alice):
    account_id = await alice.new_account()
    cache = api.services.cache
    scopes = (account_scope(account_id), user_scope(alice.user_id))

    async def cache_something() -> None:
        for scope in scopes:
            await cache.put(scope, "probe", b"stale", await cache.get(scope, "probe"))

    async def cached() -> list[bytes | None]:
        return [(await cache.get(scope, "probe")).value for scope in scopes]

    await cache_something()
    await alice.post(trades_url(account_id), json=a_trade())
    after_recording = await cached()
    await cache_something()
    await alice.post(close_url(account_id, "sig-42:approval-7"))
    after_closing = await cached()

    assert after_recording == [None, None]
    assert after_closing == [None, None]
