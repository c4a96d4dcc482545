"""The equity history over a month: raw points rolled up into minutes by the worker's maintenance once
past their retention (whole partitions dropped on PostgreSQL), and the equity endpoint reading across."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, text

from tests.support.apps import make_settings, start_api, stop_api
from tests.support.builders import sign_up
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)
from tradeguard.domain.history import MinuteAggregate, RawPoint, roll_up
from tradeguard.store.models import AccountSnapshot, EquityMinute
from tradeguard.worker import Worker

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 12, 2, tzinfo=UTC)
"""Where a day of raw retention at NOW cuts: the start of the day that holds NOW - 24 h."""
EVERY = timedelta(seconds=30)
SINCE = NOW - timedelta(hours=50)
CRASH = SINCE + timedelta(hours=3, seconds=30)
MINUTE_COLUMNS = tuple(EquityMinute.__table__.c.keys())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def history_api(request, redis_url, tmp_path_factory) -> AsyncIterator:
    """A service on a database of its own: the maintenance rolls up every account's history."""
    data = tmp_path_factory.mktemp("history")
    if request.param == "sqlite":
        url, name = f"sqlite+aiosqlite:///{data / 'tradeguard.db'}", None
    else:
        require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
        name = await create_postgres_database()
        url = postgres_url(name)
    running, lifespan = await start_api(make_settings(data, url, redis_url))
    try:
        yield running
    finally:
        await stop_api(running, lifespan)
        if name is not None:
            await drop_postgres_database(name)


def history_points(account_id: int) -> list[dict]:
    """Every 30 s for 50 hours, equity wandering, one crash to 6,000 before the cutoff."""
    rows, peak = [], Decimal("10000")
    moment = SINCE
    index = 0
    while moment < NOW:
        equity = Decimal(10000 + (index * 37) % 401 - 200)
        if moment == CRASH:
            equity = Decimal(6000)
        peak = max(peak, equity)
        rows.append(
            {
                "account_id": account_id,
                "taken_at": moment,
                "received_at": moment,
                "balance": Decimal(10000 + index % 7),
                "equity": equity,
                "margin": None,
                "peak_equity": peak,
                # As the NUMERIC(28, 10) column keeps it, for comparisons with what it holds.
                "drawdown_pct": ((peak - equity) / peak * 100).quantize(Decimal("1e-10")),
            }
        )
        moment += EVERY
        index += 1
    return rows


def raw_point(row: dict) -> RawPoint:
    return RawPoint(**{key: row[key] for key in RawPoint.__dataclass_fields__})


async def store(api, rows: list[dict]) -> None:
    async with api.session() as session:
        await session.execute(insert(AccountSnapshot), rows)
        await session.commit()


async def minutes_of(api, account_id: int) -> list[MinuteAggregate]:
    async with api.session() as session:
        rows = await session.scalars(
            select(EquityMinute).where(EquityMinute.account_id == account_id).order_by(EquityMinute.minute)
        )
        return [MinuteAggregate(**{key: getattr(row, key) for key in MINUTE_COLUMNS}) for row in rows]


async def raw_times(api, account_id: int) -> list[datetime]:
    async with api.session() as session:
        return list(
            await session.scalars(
                select(AccountSnapshot.taken_at)
                .where(AccountSnapshot.account_id == account_id)
                .order_by(AccountSnapshot.taken_at)
            )
        )


def equity_url(account_id: int) -> str:
    return f"/api/v1/accounts/{account_id}/equity"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
async def rolled_up(history_api):
    """An account's 50 hours of history, stored into the partitions the maintenance made ahead at
    their start, after the maintenance at NOW."""
    caller = await sign_up(history_api)
    account_id = await caller.new_account()
    rows = history_points(account_id)
    await Worker(history_api.services, clock=lambda: SINCE).maintain_history_once()
    await store(history_api, rows)
    report = await Worker(history_api.services, clock=lambda: NOW).maintain_history_once()
    return caller, account_id, rows, report


async def test_raw_points_past_the_retention_become_exactly_their_minutes(history_api, rolled_up):
    _, account_id, rows, report = rolled_up

    assert report.ran
    assert report.raw_kept_from == CUTOFF
    assert await raw_times(history_api, account_id) == [
        row["taken_at"] for row in rows if row["taken_at"] >= CUTOFF
    ]
    assert await minutes_of(history_api, account_id) == roll_up(
        raw_point(row) for row in rows if row["taken_at"] < CUTOFF
    )


# SQLite keeps the history unpartitioned: partitions are PostgreSQL's alone.
@pytest.mark.parametrize("history_api", ["postgresql"], indirect=True)
async def test_on_postgresql_whole_days_are_dropped_and_days_ahead_made(history_api, rolled_up):
    _, _, _, report = rolled_up
    async with history_api.session() as session:
        partitions = set(
            await session.scalars(
                text(
                    "SELECT child.relname FROM pg_inherits"
                    " JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid"
                    " JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent"
                    " WHERE parent.relname = 'account_snapshots'"
                )
            )
        )

    assert report.dropped == [
        "history_partitions.account_snapshots_p20261130",
        "history_partitions.account_snapshots_p20261201",
    ]
    assert partitions == {
        "account_snapshots_default",
        *(f"account_snapshots_p202612{day:02}" for day in (2, 3, 4, 5)),
    }


async def test_a_month_chart_reads_minutes_before_the_cutoff_and_raw_points_after(history_api, rolled_up):
    caller, account_id, rows, _ = rolled_up

    series = (await caller.get(equity_url(account_id), max_points=100)).json()

    # 50 hours into at most 100 buckets: over 30 minutes each, so an hour, 120 snapshots in each.
    assert series["resolution"] == "minute"
    assert series["bucket_seconds"] == 3600
    assert [point["snapshots"] for point in series["points"]] == [120] * 50
    assert sum(point["snapshots"] for point in series["points"]) == len(rows)
    assert series["first_taken_at"] == iso(SINCE)
    assert series["last_taken_at"] == iso(rows[-1]["taken_at"])
    assert series["points"][-1]["taken_at"] == iso(rows[-1]["taken_at"])
    crashed = [point for point in series["points"] if point["equity_min"] == 6000]
    assert len(crashed) == 1
    assert crashed[0]["drawdown_max_pct"] == float(max(row["drawdown_pct"] for row in rows))
    # The hours on either side of the cutoff: one from minutes, one from raw points.
    assert iso(CUTOFF - EVERY) in [point["taken_at"] for point in series["points"]]
    assert iso(CUTOFF + timedelta(hours=1) - EVERY) in [point["taken_at"] for point in series["points"]]


async def test_a_window_inside_the_raw_retention_is_answered_as_before(history_api, rolled_up):
    caller, account_id, rows, _ = rolled_up
    since = CUTOFF + timedelta(hours=1)

    one_by_one = (await caller.get(equity_url(account_id), since=iso(since), limit=3)).json()
    bucketed = (await caller.get(equity_url(account_id), since=iso(since), max_points=50)).json()

    assert one_by_one["resolution"] == "raw"
    assert [point["taken_at"] for point in one_by_one["points"]] == [
        iso(row["taken_at"]) for row in rows[-3:]
    ]
    assert one_by_one["bucket_seconds"] is None
    assert bucketed["resolution"] == "raw"
    assert sum(point["snapshots"] for point in bucketed["points"]) == sum(
        1 for row in rows if row["taken_at"] >= since
    )


async def test_one_by_one_past_the_cutoff_answers_minutes_and_says_so(history_api, rolled_up):
    caller, account_id, rows, _ = rolled_up
    since = CUTOFF - timedelta(minutes=2, seconds=10)

    series = (
        await caller.get(
            equity_url(account_id), since=iso(since), until=iso(CUTOFF + timedelta(minutes=1)), limit=10
        )
    ).json()

    assert series["resolution"] == "minute"
    assert series["bucket_seconds"] == 60
    assert series["since"] == iso(CUTOFF - timedelta(minutes=3))
    assert [point["taken_at"] for point in series["points"]] == [
        iso(CUTOFF - timedelta(minutes=2, seconds=30)),
        iso(CUTOFF - timedelta(minutes=1, seconds=30)),
        iso(CUTOFF - timedelta(seconds=30)),
        iso(CUTOFF + timedelta(seconds=30)),
    ]
    assert [point["snapshots"] for point in series["points"]] == [2, 2, 2, 2]


async def test_raw_points_asked_for_before_the_cutoff_answer_422_naming_the_resolution(
    history_api, rolled_up
):
    caller, account_id, _, _ = rolled_up

    refused = await caller.get(equity_url(account_id), since=iso(SINCE), resolution="raw", max_points=10)
    unknown = await caller.get(equity_url(account_id), resolution="hourly")
    minutes = await caller.get(
        equity_url(account_id), since=iso(CUTOFF + timedelta(hours=1)), resolution="minute"
    )

    assert refused.status_code == 422
    assert [error["loc"] for error in refused.json()["errors"]] == [["query", "resolution"]]
    assert "raw points are kept from 2026-12-02T00:00:00+00:00" in refused.json()["detail"]
    assert unknown.status_code == 422
    assert [error["loc"] for error in unknown.json()["errors"]] == [["query", "resolution"]]
    assert minutes.status_code == 200
    assert minutes.json()["resolution"] == "minute"
    assert minutes.json()["bucket_seconds"] == 60


async def test_a_point_arriving_after_its_day_was_rolled_up_joins_its_minute_at_the_next_run(history_api):
    caller = await sign_up(history_api)
    account_id = await caller.new_account()
    rows = history_points(account_id)
    late = rows.pop(100)
    await store(history_api, rows)
    worker = Worker(history_api.services, clock=lambda: NOW)
    await worker.maintain_history_once()

    await store(history_api, [late])
    await worker.maintain_history_once()

    assert late["taken_at"] not in await raw_times(history_api, account_id)
    assert await minutes_of(history_api, account_id) == roll_up(
        raw_point(row) for row in [*rows, late] if row["taken_at"] < CUTOFF
    )


async def test_a_point_dated_beyond_every_partition_is_kept_and_its_day_is_made_later(history_api):
    caller = await sign_up(history_api)
    account_id = await caller.new_account()
    ahead = NOW + timedelta(days=10)
    (row,) = history_points(account_id)[:1]
    row.update(taken_at=ahead, received_at=NOW)
    await store(history_api, [row])

    report = await Worker(history_api.services, clock=lambda: ahead).maintain_history_once()

    assert await raw_times(history_api, account_id) == [ahead]
    if history_api.services.engine.dialect.name == "postgresql":
        assert "history_partitions.account_snapshots_p20261213" in report.created
        async with history_api.session() as session:
            in_default = await session.scalar(
                text("SELECT count(*) FROM history_partitions.account_snapshots_default")
            )
            in_its_day = await session.scalar(
                select(func.count()).select_from(text("history_partitions.account_snapshots_p20261213"))
            )
        assert (in_default, in_its_day) == (0, 1)


async def test_an_account_with_nothing_rolled_up_is_answered_raw_whenever_its_points_were_taken(
    history_api, rolled_up
):
    caller = await sign_up(history_api)
    account_id = await caller.new_account()
    rows = history_points(account_id)[:20]
    await store(history_api, rows)

    series = (await caller.get(equity_url(account_id), max_points=10)).json()

    assert series["resolution"] == "raw"
    assert sum(point["snapshots"] for point in series["points"]) == 20
    assert series["since"] == iso(SINCE)
