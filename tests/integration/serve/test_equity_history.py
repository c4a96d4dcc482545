"""The equity history a chart reads: snapshots one by one, or a long window cut into buckets."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.bridging import register_follower, snapshot
from tests.support.builders import NOW, sign_up, store_snapshots
from tradeguard.queries.service import cache_key

SECOND = timedelta(seconds=1)
EVERY = 5 * SECOND
OUTLIER = datetime(2099, 1, 1, tzinfo=NOW.tzinfo)


def equity_url(account_id: int) -> str:
    return f"/api/v1/accounts/{account_id}/equity"


async def store_history(api, account_id: int, snapshots: list[tuple[datetime, str]]) -> None:
    """Snapshots in time order, the peak a running maximum as the ingest step keeps it."""
    rows, peak = [], Decimal(0)
    for taken_at, equity_text in sorted(snapshots):
        equity = Decimal(equity_text)
        peak = max(peak, equity)
        rows.append((taken_at, equity, peak))
    await store_snapshots(api, account_id, rows)


def iso(moment: datetime) -> str:
    """As the API writes a time: UTC, with Z."""
    return moment.isoformat().replace("+00:00", "Z")


def every_five_seconds(count: int, equity: str = "10000") -> list[tuple[datetime, str]]:
    return [(NOW + index * EVERY, equity) for index in range(count)]


async def test_a_long_history_is_cut_into_at_most_max_points_buckets_of_a_round_width(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await store_history(api, account_id, every_five_seconds(1000))

    series = (await caller.get(equity_url(account_id), max_points=50)).json()

    # 4,995 s into at most 50 buckets: 102 s each at least, so 2 minutes, 24 snapshots in each.
    assert series["bucket_seconds"] == 120
    points = series["points"]
    assert len(points) == 42
    assert [point["snapshots"] for point in points] == [24] * 41 + [16]
    assert points[0]["taken_at"] == iso(NOW + 23 * EVERY)
    assert points[-1]["taken_at"] == iso(NOW + 999 * EVERY)
    assert series["since"] == iso(NOW)
    assert series["until"] == iso(NOW + 999 * EVERY + timedelta(microseconds=1))


async def test_a_crash_and_a_spike_inside_a_bucket_are_kept_as_its_extremes(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    history = every_five_seconds(120)
    history[30] = (history[30][0], "7000")
    history[90] = (history[90][0], "10500.25")
    await store_history(api, account_id, history)

    points = (await caller.get(equity_url(account_id), max_points=3)).json()["points"]

    # 595 s into at most 3 buckets: 5 minutes each, the crash in the first and the spike in the second.
    assert [point["snapshots"] for point in points] == [60, 60]
    first, second = points
    assert (first["equity_min"], first["equity_max"], first["equity"]) == (7000, 10000, 10000)
    assert first["drawdown_max_pct"] == 30
    assert first["drawdown_pct"] == 0
    assert (second["equity_min"], second["equity_max"]) == (10000, 10500.25)
    assert second["peak_equity"] == 10500.25


async def test_every_database_puts_a_time_in_the_bucket_of_its_nearest_millisecond(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    just_before = timedelta(microseconds=400)
    history = [
        (NOW, "10000"),
        (NOW + 5 * SECOND - just_before, "9000"),
        (NOW + 10 * SECOND - 2 * just_before, "9500"),
        (NOW + 14 * SECOND, "10000"),
    ]
    await store_history(api, account_id, history)
    until = NOW + 15 * SECOND

    series = (await caller.get(equity_url(account_id), until=iso(until), max_points=5)).json()

    # 0.4 ms before 12:00:05 is 12:00:05 to the millisecond; 0.8 ms before 12:00:10 is 12:00:09.999.
    assert series["bucket_seconds"] == 5
    assert [point["snapshots"] for point in series["points"]] == [1, 2, 1]
    assert series["points"][1]["equity_min"] == 9000


async def test_only_the_window_is_bucketed_and_the_whole_history_is_still_named(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await store_history(api, account_id, [*every_five_seconds(60), (OUTLIER, "9000")])
    since, until = NOW + 10 * EVERY, NOW + 20 * EVERY

    series = (
        await caller.get(
            equity_url(account_id), since=since.isoformat(), until=until.isoformat(), max_points=100
        )
    ).json()

    assert [point["taken_at"] for point in series["points"]] == [
        iso(NOW + index * EVERY) for index in range(10, 20)
    ]
    assert all(point["snapshots"] == 1 for point in series["points"])
    assert (series["since"], series["until"]) == (iso(since), iso(until))
    assert series["first_taken_at"] == iso(NOW)
    assert series["last_taken_at"] == iso(OUTLIER)


async def test_a_window_ending_now_leaves_a_snapshot_dated_far_ahead_out_of_its_buckets(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await store_history(api, account_id, [*every_five_seconds(60), (OUTLIER, "9000")])
    until = NOW + 60 * EVERY

    series = (await caller.get(equity_url(account_id), until=until.isoformat(), max_points=62)).json()

    assert series["bucket_seconds"] == 5
    assert len(series["points"]) == 60
    assert series["points"][-1]["taken_at"] == iso(NOW + 59 * EVERY)


async def test_without_max_points_the_series_is_the_latest_snapshots_one_by_one_as_before(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    history = every_five_seconds(10)
    history[7] = (history[7][0], "9000")
    await store_history(api, account_id, history)

    series = (await caller.get(equity_url(account_id), limit=4)).json()

    assert [point["equity"] for point in series["points"]] == [10000, 9000, 10000, 10000]
    assert series["points"][1] == {
        "taken_at": iso(history[7][0]),
        "balance": 10000,
        "equity": 9000,
        "peak_equity": 10000,
        "drawdown_pct": 10,
        "snapshots": 1,
        "equity_min": 9000,
        "equity_max": 9000,
        "drawdown_max_pct": 10,
    }
    assert series["bucket_seconds"] is None


async def test_a_bucketed_series_is_cached_and_a_new_snapshot_is_in_the_next_read(api):
    follower = await register_follower(api)
    for equity in ("10000", "9900"):
        assert (await follower.bridge.send_snapshot(snapshot(equity=equity)))["applied"]
    url = equity_url(follower.account_id)
    params = {"since": None, "until": None, "limit": None, "max_points": 500}
    entry = cache_key(follower.owner.user_id, follower.account_id, "equity", params)
    before = (await follower.owner.get(url, max_points=500)).json()
    cached = await api.services.cache.get(*entry)

    assert (await follower.bridge.send_snapshot(snapshot(equity="9800")))["applied"]
    dropped = await api.services.cache.get(*entry)
    after = (await follower.owner.get(url, max_points=500)).json()

    assert cached.hit
    assert not dropped.hit
    assert [point["equity"] for point in before["points"]] == [10000, 9900]
    assert [point["equity"] for point in after["points"]] == [10000, 9900, 9800]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"max_points": 1}, "max_points", "greater than or equal to 2"),
        ({"max_points": 5001}, "max_points", "less than or equal to 5000"),
        ({"max_points": "many"}, "max_points", "valid integer"),
        ({"max_points": 100, "limit": 100}, "max_points", "not both"),
        ({"since": NOW.isoformat(), "until": NOW.isoformat()}, "until", "later than since"),
        (
            {"since": NOW.isoformat(), "until": (NOW - EVERY).isoformat(), "max_points": 10},
            "until",
            "later than since",
        ),
        ({"since": "yesterday", "max_points": 10}, "since", "valid datetime"),
    ],
    ids=[
        "one-point",
        "too-many-points",
        "not-a-number",
        "both-modes",
        "empty-window",
        "window-backwards",
        "bad-time",
    ],
)
async def test_bad_parameters_answer_422_naming_the_parameter(api, params, field, message):
    caller = await sign_up(api)
    account_id = await caller.new_account()

    response = await caller.get(equity_url(account_id), **params)

    assert response.status_code == 422
    body = response.json()
    assert f"query.{field}:" in body["detail"]
    assert message in body["detail"]
    assert [error["loc"] for error in body["errors"]] == [["query", field]]
