"""The periods a risk rule measures over: a day, week, month, quarter or year in a time zone of its own.

Prop firms and copy platforms draw their day at different moments: FTMO at midnight Central
European time (CET in winter, CEST in summer), The5ers at 5 PM in New York, others at the
broker's server midnight (a zone such as "Etc/GMT-2"). A `Period` names its zone and the local
time of day at which it resets; its boundaries are that local time on the first day of each
period, so that they follow the zone's daylight-saving changes. A calendar period runs from its
latest boundary; a rolling one covers the last length of time, whatever the clock says.

A reset time that a daylight-saving change skips is read with the offset from before the change,
as the standard library reads it: 02:30 on the night clocks jump from 02:00 to 03:00 is 03:30. A
time that a change repeats counts the first time it shows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class PeriodKind(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Anchor(enum.StrEnum):
    CALENDAR = "calendar"
    """from the period's latest boundary: today, this week, this month"""
    ROLLING = "rolling"
    """the last day, week, …, ending now"""


class InvalidPeriod(ValueError):
    """A period that cannot be measured: its message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


_ROLLING_LENGTHS = {
    PeriodKind.DAY: timedelta(days=1),
    PeriodKind.WEEK: timedelta(weeks=1),
    PeriodKind.MONTH: timedelta(days=30),
    PeriodKind.QUARTER: timedelta(days=91),
    PeriodKind.YEAR: timedelta(days=365),
}
_MONTHS = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    time_zone: str
    """an IANA zone name ("Europe/Prague", "America/New_York", "Etc/GMT-2" for a broker's UTC+2)"""
    reset: time = time(0, 0)
    """the local time of day at which a calendar period starts"""
    anchor: Anchor = Anchor.CALENDAR

    def __post_init__(self) -> None:
        if not self.time_zone:
            raise InvalidPeriod("time_zone", "a period needs a time zone")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidPeriod("time_zone", f"unknown time zone {self.time_zone!r}") from None
        if self.reset.tzinfo is not None:
            raise InvalidPeriod("reset", "a local time of day, without a zone (the period's zone applies)")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def period_start(period: Period, at: datetime) -> datetime:
    """When the period holding `at` began, in UTC: the latest boundary at or before `at` (calendar),
    or `at` minus the period's length (rolling)."""
    at = _aware(at)
    if period.anchor is Anchor.ROLLING:
        return at - _ROLLING_LENGTHS[period.kind]
    local_day = at.astimezone(period.zone).date()
    first = _first_day(period.kind, local_day)
    start = _boundary(period, first)
    if start > at:
        start = _boundary(period, _step(period.kind, first, -1))
    return start


def next_boundary(period: Period, at: datetime) -> datetime:
    """The first calendar boundary after `at`, in UTC: when a rule of this period resets."""
    if period.anchor is Anchor.ROLLING:
        raise InvalidPeriod("anchor", "a rolling period has no boundaries")
    at = _aware(at)
    first = _first_day(period.kind, at.astimezone(period.zone).date())
    following = _boundary(period, first)
    while following <= at:
        first = _step(period.kind, first, 1)
        following = _boundary(period, first)
    return following


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a naive datetime: periods are measured from aware instants")
    return at.astimezone(UTC)


def _boundary(period: Period, first_day: date) -> datetime:
    """The period's reset time on `first_day`, in the period's zone, as a UTC instant."""
    return datetime.combine(first_day, period.reset, tzinfo=period.zone).astimezone(UTC)


def _first_day(kind: PeriodKind, day: date) -> date:
    if kind is PeriodKind.DAY:
        return day
    if kind is PeriodKind.WEEK:
        return day - timedelta(days=day.weekday())
    months = _MONTHS[kind]
    month = (day.month - 1) // months * months + 1
    return date(day.year, month, 1)


def _step(kind: PeriodKind, first_day: date, periods: int) -> date:
    if kind is PeriodKind.DAY:
        return first_day + timedelta(days=periods)
    if kind is PeriodKind.WEEK:
        return first_day + timedelta(weeks=periods)
    months = first_day.year * 12 + first_day.month - 1 + periods * _MONTHS[kind]
    return date(months // 12, months % 12 + 1, 1)
