"""The equity history's shape over time: raw points for a while, then minute aggregates, then nothing.

Pure decisions only: which resolution answers a window, which time partitions a moment needs and
which may go, and what a minute of raw points rolls up into. Time is always an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

MINUTE = timedelta(minutes=1)
RAW_PARTITION = timedelta(days=1)
"""The width of a partition of raw points: one is dropped whole once its day is past the retention."""
MINUTE_PARTITION = timedelta(days=7)
"""The width of a partition of minute aggregates, which are kept for months."""

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Resolution(StrEnum):
    RAW = "raw"
    """Each snapshot as it was applied."""
    MINUTE = "minute"
    """Per account and minute: the first, last, lowest and highest values of its snapshots."""


class UnanswerableWindow(ValueError):
    """A window the history cannot answer at the resolution asked; `parameter` names the one to change."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def resolution_for(
    asked: Resolution | None, since: datetime | None, raw_kept_from: datetime | None
) -> Resolution:
    """The resolution that answers a window starting at `since` (None: no lower bound, the latest points).

    Raw points before `raw_kept_from` (None: none were ever rolled up) exist only as minute aggregates,
    so a window reaching before it is answered from those, unless raw points were asked for by name.
    """
    reaches_past_raw = since is not None and raw_kept_from is not None and since < raw_kept_from
    if asked is Resolution.RAW and reaches_past_raw:
        raise UnanswerableWindow(
            "resolution",
            f"raw points are kept from {raw_kept_from.isoformat()} on and the window starts before; "
            "ask for resolution=minute, or a later since",
        )
    if asked is Resolution.MINUTE or reaches_past_raw:
        return Resolution.MINUTE
    return Resolution.RAW


def window_at(
    resolution: Resolution, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The window a resolution answers: a minute aggregate is in a window whole or not at all, so at
    minute resolution the window widens to whole minutes."""
    if resolution is Resolution.RAW:
        return since, until
    return (
        floor_to(since, MINUTE) if since is not None else None,
        _ceil_to(until, MINUTE) if until is not None else None,
    )


def bucket_width_at(resolution: Resolution, width: timedelta) -> timedelta:
    """Minute aggregates cannot be cut finer than their minute."""
    return max(width, MINUTE) if resolution is Resolution.MINUTE else width


def floor_to(moment: datetime, width: timedelta) -> datetime:
    """The start of the slot of a grid of `width` aligned on the Unix epoch that `moment` falls in."""
    return _UNIX_EPOCH + (moment - _UNIX_EPOCH) // width * width


def recent_slots(now: datetime, span: timedelta, count: int) -> tuple[datetime, datetime, timedelta]:
    """(since, until, width): the last `count` slots of width `span / count` on a grid aligned on the
    Unix epoch, the last one holding `now`. The window moves a whole slot at a time, so a slot keeps
    its edges from one read to the next and only the last one, still filling, changes."""
    width = span / count
    until = floor_to(now, width) + width
    return until - count * width, until, width


def _ceil_to(moment: datetime, width: timedelta) -> datetime:
    start = floor_to(moment, width)
    return start if start == moment else start + width


@dataclass(frozen=True, order=True)
class Partition:
    """A time range [start, end) of one table, held as a partition of its own."""

    start: datetime
    end: datetime

    def name(self, table: str) -> str:
        return f"{table}_p{self.start:%Y%m%d}"


def partition_of(moment: datetime, width: timedelta) -> Partition:
    start = floor_to(moment, width)
    return Partition(start, start + width)


def partition_named(name: str, table: str, width: timedelta) -> Partition | None:
    """The partition a name of `Partition.name` stands for; None for any other name (the default one)."""
    prefix = f"{table}_p"
    if not name.startswith(prefix):
        return None
    try:
        start = datetime.strptime(name[len(prefix) :], "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return Partition(start, start + width)


def partitions_wanted(now: datetime, kept_from: datetime, width: timedelta, ahead: int) -> list[Partition]:
    """Every partition from the one holding `kept_from` to `ahead` past the one holding `now`, so
    that the points of today and of the next `ahead` partitions never land in the default one."""
    first = partition_of(min(kept_from, now), width)
    count = math.ceil((floor_to(now, width) - first.start) / width) + 1 + ahead
    return [Partition(first.start + index * width, first.end + index * width) for index in range(count)]


def retention_cutoff(now: datetime, retention: timedelta, width: timedelta) -> datetime:
    """Everything before this goes: the start of the partition that holds `now - retention`, so that
    whole partitions go and at least `retention` is always kept."""
    return floor_to(now - retention, width)


def partitions_past(existing: Iterable[Partition], cutoff: datetime) -> list[Partition]:
    """The partitions that hold only what is before `cutoff`, oldest first."""
    return sorted(partition for partition in existing if partition.end <= cutoff)


@dataclass(frozen=True)
class RawPoint:
    account_id: int
    taken_at: datetime
    balance: Decimal
    equity: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal


@dataclass(frozen=True)
class MinuteAggregate:
    """An account's snapshots of one minute: what a chart draws of them and what the drawdown needs.

    The peak and drawdown are the last snapshot's (the peak only grows, so its last value is the
    minute's highest); the deepest drawdown is kept beside it so that a crash never averages away.
    """

    account_id: int
    minute: datetime
    snapshots: int
    first_taken_at: datetime
    last_taken_at: datetime
    equity_first: Decimal
    equity_last: Decimal
    equity_min: Decimal
    equity_max: Decimal
    balance_first: Decimal
    balance_last: Decimal
    balance_min: Decimal
    balance_max: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal
    drawdown_max_pct: Decimal


def aggregate_of(point: RawPoint) -> MinuteAggregate:
    """One point as a minute of its own, as `merge` combines them."""
    return MinuteAggregate(
        account_id=point.account_id,
        minute=floor_to(point.taken_at, MINUTE),
        snapshots=1,
        first_taken_at=point.taken_at,
        last_taken_at=point.taken_at,
        equity_first=point.equity,
        equity_last=point.equity,
        equity_min=point.equity,
        equity_max=point.equity,
        balance_first=point.balance,
        balance_last=point.balance,
        balance_min=point.balance,
        balance_max=point.balance,
        peak_equity=point.peak_equity,
        drawdown_pct=point.drawdown_pct,
        drawdown_max_pct=point.drawdown_pct,
    )


def merge(ours: MinuteAggregate, theirs: MinuteAggregate) -> MinuteAggregate:
    """Two aggregates of the same account and minute as one, in whichever order they were rolled up
    (points arriving after their minute was rolled up are rolled up later, into the same row)."""
    if (ours.account_id, ours.minute) != (theirs.account_id, theirs.minute):
        raise ValueError("only aggregates of the same account and minute merge")
    first = ours if ours.first_taken_at <= theirs.first_taken_at else theirs
    last = ours if ours.last_taken_at >= theirs.last_taken_at else theirs
    return replace(
        last,
        snapshots=ours.snapshots + theirs.snapshots,
        first_taken_at=first.first_taken_at,
        equity_first=first.equity_first,
        balance_first=first.balance_first,
        equity_min=min(ours.equity_min, theirs.equity_min),
        equity_max=max(ours.equity_max, theirs.equity_max),
        balance_min=min(ours.balance_min, theirs.balance_min),
        balance_max=max(ours.balance_max, theirs.balance_max),
        drawdown_max_pct=max(ours.drawdown_max_pct, theirs.drawdown_max_pct),
    )


def roll_up(points: Iterable[RawPoint]) -> list[MinuteAggregate]:
    """The points as one aggregate per account and minute, in account and minute order."""
    minutes: dict[tuple[int, datetime], MinuteAggregate] = {}
    for point in points:
        single = aggregate_of(point)
        key = (single.account_id, single.minute)
        held = minutes.get(key)
        minutes[key] = single if held is None else merge(held, single)
    return [minutes[key] for key in sorted(minutes)]
