"""The equity history's retention: which resolution answers a window, which partitions exist and go,
and what a minute of raw points rolls up into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeguard.domain.history import (
    MINUTE,
    RAW_PARTITION,
    Partition,
    RawPoint,
    Resolution,
    UnanswerableWindow,
    bucket_width_at,
    floor_to,
    merge,
    partition_named,
    partition_of,
    partitions_past,
    partitions_wanted,
    recent_slots,
    resolution_for,
    retention_cutoff,
    roll_up,
    window_at,
)

DAY = timedelta(days=1)
KEPT_FROM = datetime(2026, 11, 30, tzinfo=UTC)


def point(
    taken_at: datetime, equity: str, *, account_id: int = 1, balance: str = "10000", peak: str = "10000"
):
    equity_value, peak_value = Decimal(equity), Decimal(peak)
    return RawPoint(
        account_id=account_id,
        taken_at=taken_at,
        balance=Decimal(balance),
        equity=equity_value,
        peak_equity=peak_value,
        drawdown_pct=(peak_value - equity_value) / peak_value * 100,
    )


@pytest.mark.parametrize(
    ("asked", "since", "kept_from", "answer"),
    [
        (None, None, KEPT_FROM, Resolution.RAW),
        (None, KEPT_FROM, KEPT_FROM, Resolution.RAW),
        (None, KEPT_FROM - timedelta(microseconds=1), KEPT_FROM, Resolution.MINUTE),
        (None, KEPT_FROM - 30 * DAY, None, Resolution.RAW),
        (Resolution.MINUTE, KEPT_FROM + DAY, KEPT_FROM, Resolution.MINUTE),
        (Resolution.MINUTE, None, None, Resolution.MINUTE),
        (Resolution.RAW, KEPT_FROM, KEPT_FROM, Resolution.RAW),
    ],
    ids=[
        "latest-points",
        "inside-raw",
        "a-moment-before-raw",
        "nothing-rolled-up-yet",
        "minutes-asked",
        "minutes-asked-unbounded",
        "raw-asked-inside",
    ],
)
def test_a_window_is_answered_raw_unless_it_reaches_before_the_raw_points(asked, since, kept_from, answer):
    assert resolution_for(asked, since, kept_from) is answer


def test_raw_points_asked_for_before_they_are_kept_are_refused_naming_the_resolution():
    with pytest.raises(UnanswerableWindow) as refused:
        resolution_for(Resolution.RAW, KEPT_FROM - MINUTE, KEPT_FROM)

    assert refused.value.parameter == "resolution"
    assert "2026-11-30T00:00:00+00:00" in str(refused.value)


def test_a_minute_window_is_whole_minutes_and_is_never_cut_finer():
    since = datetime(2026, 11, 29, 10, 15, 42, 500, tzinfo=UTC)

    until = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)

    assert window_at(Resolution.MINUTE, since, until) == (datetime(2026, 11, 29, 10, 15, tzinfo=UTC), until)
    assert window_at(Resolution.MINUTE, until, since + MINUTE) == (
        until,
        datetime(2026, 11, 29, 10, 17, tzinfo=UTC),
    )
    assert window_at(Resolution.MINUTE, None, None) == (None, None)
    assert window_at(Resolution.RAW, since, until) == (since, until)
    assert bucket_width_at(Resolution.MINUTE, timedelta(seconds=5)) == MINUTE
    assert bucket_width_at(Resolution.MINUTE, timedelta(minutes=5)) == timedelta(minutes=5)
    assert bucket_width_at(Resolution.RAW, timedelta(seconds=5)) == timedelta(seconds=5)


def test_partitions_lie_on_a_grid_aligned_on_the_unix_epoch_and_are_named_by_their_start():
    moment = datetime(2026, 12, 1, 15, 36, tzinfo=UTC)
    day = partition_of(moment, RAW_PARTITION)
    week = partition_of(moment, 7 * DAY)

    assert day == Partition(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    assert week.start <= moment < week.end
    assert (week.start - datetime(1970, 1, 1, tzinfo=UTC)) % (7 * DAY) == timedelta(0)
    assert day.name("account_snapshots") == "account_snapshots_p20261201"
    assert partition_named("account_snapshots_p20261201", "account_snapshots", RAW_PARTITION) == day
    assert partition_named("account_snapshots_default", "account_snapshots", RAW_PARTITION) is None
    assert partition_named("equity_minutes_p20261126", "account_snapshots", RAW_PARTITION) is None


def test_the_partitions_wanted_run_from_the_oldest_kept_to_some_ahead_of_now():
    now = datetime(2026, 12, 1, 15, 36, tzinfo=UTC)

    wanted = partitions_wanted(now, datetime(2026, 11, 30, tzinfo=UTC), RAW_PARTITION, ahead=2)

    assert [partition.start.day for partition in wanted] == [30, 1, 2, 3]
    assert all(a.end == b.start for a, b in zip(wanted, wanted[1:], strict=False))


def test_without_anything_kept_before_now_the_partitions_wanted_start_with_now():
    now = datetime(2026, 12, 1, 15, 36, tzinfo=UTC)

    wanted = partitions_wanted(now, now + 5 * DAY, RAW_PARTITION, ahead=1)

    assert [partition.start.day for partition in wanted] == [1, 2]


def test_a_day_of_retention_keeps_between_one_and_two_days_and_drops_only_whole_partitions():
    now = datetime(2026, 12, 1, 15, 36, tzinfo=UTC)
    cutoff = retention_cutoff(now, DAY, RAW_PARTITION)
    existing = [partition_of(now + offset * DAY, RAW_PARTITION) for offset in (-3, -2, -1, 0, 1)]

    assert cutoff == datetime(2026, 11, 30, tzinfo=UTC)
    assert now - cutoff >= DAY
    assert partitions_past(reversed(existing), cutoff) == existing[:2]


def test_a_minute_rolls_up_into_its_first_last_lowest_highest_and_deepest():
    minute = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
    points = [
        point(minute + timedelta(seconds=5), "10000", balance="10000"),
        point(minute + timedelta(seconds=25), "8000", balance="9800"),
        point(minute + timedelta(seconds=45), "10500", balance="10100", peak="10500"),
        point(minute + timedelta(seconds=65), "10400", peak="10500"),
        point(minute + timedelta(seconds=10), "5000", account_id=2),
    ]

    first, second, other = roll_up(reversed(points))

    assert (first.account_id, first.minute, first.snapshots) == (1, minute, 3)
    assert (first.first_taken_at, first.last_taken_at) == (points[0].taken_at, points[2].taken_at)
    assert (first.equity_first, first.equity_last, first.equity_min, first.equity_max) == (
        Decimal("10000"),
        Decimal("10500"),
        Decimal("8000"),
        Decimal("10500"),
    )
    assert (first.balance_first, first.balance_last, first.balance_min, first.balance_max) == (
        Decimal("10000"),
        Decimal("10100"),
        Decimal("9800"),
        Decimal("10100"),
    )
    assert (first.peak_equity, first.drawdown_pct, first.drawdown_max_pct) == (Decimal("10500"), 0, 20)
    assert (second.minute, second.snapshots) == (minute + MINUTE, 1)
    assert (other.account_id, other.equity_min) == (2, Decimal("5000"))


def test_a_minute_rolled_up_in_two_parts_merges_into_what_one_roll_up_gives():
    minute = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
    points = [
        point(minute + timedelta(seconds=second), str(9000 + second * 7 % 13)) for second in range(0, 60, 5)
    ]

    (whole,) = roll_up(points)
    (early,) = roll_up(points[::2])
    (late,) = roll_up(points[1::2])

    assert merge(early, late) == whole
    assert merge(late, early) == whole


def test_only_aggregates_of_one_account_and_minute_merge():
    minute = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
    (one,) = roll_up([point(minute, "10000")])
    (other,) = roll_up([point(minute, "10000", account_id=2)])

    with pytest.raises(ValueError, match="same account and minute"):
        merge(one, other)


def test_floor_to_keeps_a_moment_on_the_grid_where_it_is():
    on_grid = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)

    assert floor_to(on_grid, MINUTE) == on_grid
    assert floor_to(on_grid - timedelta(microseconds=1), MINUTE) == on_grid - MINUTE


def test_recent_slots_end_with_the_one_holding_now_and_keep_their_edges_as_now_moves_within_it():
    now = datetime(2026, 11, 29, 10, 15, 30, tzinfo=UTC)

    since, until, width = recent_slots(now, timedelta(hours=1), 30)
    later = recent_slots(now + timedelta(seconds=29), timedelta(hours=1), 30)
    next_slot = recent_slots(now + timedelta(seconds=30), timedelta(hours=1), 30)

    assert width == timedelta(minutes=2)
    assert (since, until) == (
        datetime(2026, 11, 29, 9, 16, tzinfo=UTC),
        datetime(2026, 11, 29, 10, 16, tzinfo=UTC),
    )
    assert later == (since, until, width)
    assert next_slot == (since + width, until + width, width)
