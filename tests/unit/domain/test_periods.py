"""Periods in their own time zones: the firms' day boundaries across daylight-saving changes, and
laws that hold in every zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.periods import (
    Anchor,
    InvalidPeriod,
    Period,
    PeriodKind,
    next_boundary,
    period_start,
)

ZONES = (
    "Europe/Prague",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Havana",
    "Etc/GMT-2",
    "UTC",
)


def utc(*fields) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def test_a_day_at_midnight_in_prague_starts_an_hour_earlier_in_utc_once_summer_time_begins():
    # FTMO's day runs from midnight CE(S)T; Europe moved to summer time on 2026-03-29 at 02:00 CET.
    ftmo_day = Period(PeriodKind.DAY, "Europe/Prague")

    assert period_start(ftmo_day, utc(2026, 3, 28, 12)) == utc(2026, 3, 27, 23)
    assert next_boundary(ftmo_day, utc(2026, 3, 28, 12)) == utc(2026, 3, 28, 23)
    assert next_boundary(ftmo_day, utc(2026, 3, 29, 12)) == utc(2026, 3, 29, 22)


def test_a_day_at_five_pm_in_new_york_follows_the_us_change_not_europes():
    # The5ers' day resets at 5 PM New York; the US moved to daylight time on 2026-03-08.
    the5ers_day = Period(PeriodKind.DAY, "America/New_York", reset=time(17, 0))

    assert period_start(the5ers_day, utc(2026, 3, 7, 23)) == utc(2026, 3, 7, 22)
    assert next_boundary(the5ers_day, utc(2026, 3, 7, 23)) == utc(2026, 3, 8, 21)
    assert period_start(the5ers_day, utc(2026, 3, 8, 20, 59)) == utc(2026, 3, 7, 22)


def test_a_broker_server_day_in_a_fixed_offset_never_moves():
    server_day = Period(PeriodKind.DAY, "Etc/GMT-2")

    assert period_start(server_day, utc(2026, 7, 1, 21, 59)) == utc(2026, 6, 30, 22)
    assert period_start(server_day, utc(2026, 7, 1, 22)) == utc(2026, 7, 1, 22)


def test_weeks_start_on_monday_months_on_the_first_quarters_and_years_with_their_first_month():
    at = utc(2026, 8, 19, 10)  # a Wednesday

    assert period_start(Period(PeriodKind.WEEK, "UTC"), at) == utc(2026, 8, 17)
    assert period_start(Period(PeriodKind.MONTH, "UTC"), at) == utc(2026, 8, 1)
    assert period_start(Period(PeriodKind.QUARTER, "UTC"), at) == utc(2026, 7, 1)
    assert period_start(Period(PeriodKind.YEAR, "UTC"), at) == utc(2026, 1, 1)
    assert next_boundary(Period(PeriodKind.QUARTER, "UTC"), at) == utc(2026, 10, 1)
    assert next_boundary(Period(PeriodKind.YEAR, "UTC"), utc(2026, 12, 31, 23)) == utc(2027, 1, 1)


def test_a_rolling_period_covers_its_length_back_from_now_and_has_no_boundaries():
    last_day = Period(PeriodKind.DAY, "UTC", anchor=Anchor.ROLLING)

    assert period_start(last_day, utc(2026, 3, 8, 15, 30)) == utc(2026, 3, 7, 15, 30)
    with pytest.raises(InvalidPeriod, match="anchor"):
        next_boundary(last_day, utc(2026, 3, 8))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"time_zone": ""}, "time_zone"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "UTC", "reset": time(17, 0, tzinfo=UTC)}, "reset"),
    ],
)
def test_a_period_that_cannot_be_measured_is_refused_naming_the_field(fields, named):
    with pytest.raises(InvalidPeriod) as refused:
        Period(PeriodKind.DAY, **fields)

    assert refused.value.field == named


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
periods = st.builds(
    Period,
    kind=st.sampled_from(PeriodKind),
    time_zone=st.sampled_from(ZONES),
    reset=st.times(),
)


@given(periods, instants)
def test_every_instant_lies_in_exactly_one_period_between_two_boundaries(period, at):
    start, end = period_start(period, at), next_boundary(period, at)

    assert start <= at < end
    assert period_start(period, start) == start
    assert period_start(period, end) == end
    assert next_boundary(period, start) == end


@given(st.sampled_from(ZONES), st.times(), instants)
def test_a_day_boundary_is_crossed_exactly_once_per_local_day_in_every_zone(zone, reset, at):
    day = Period(PeriodKind.DAY, zone, reset=reset)

    first = next_boundary(day, at)
    second = next_boundary(day, first)

    days_apart = second.astimezone(day.zone).date() - first.astimezone(day.zone).date()
    assert days_apart == timedelta(days=1)
    assert timedelta(hours=20) <= second - first <= timedelta(hours=28)
