"""The platform list's sparklines: each account's deepest drawdown per bucket of the last hour (or day)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.builders import PASSWORD, Caller, sign_up, store_snapshots
from tests.support.statements import statements_sent
from tradeguard.auth.users import set_role
from tradeguard.domain.history import floor_to
from tradeguard.store.models import EquityMinute

DRAWDOWNS = "/api/v1/platform/drawdowns"
PEAK = Decimal("10000")
BUCKET = timedelta(minutes=2)
UNKNOWN_ACCOUNT = 9_000_000_000


def at_drawdown(taken_at: datetime, pct: str) -> tuple[datetime, Decimal, Decimal]:
    """A snapshot `pct` % below a peak of 10,000."""
    return taken_at, PEAK * (100 - Decimal(pct)) / 100, PEAK


def bucket_of(moment: datetime, body: dict) -> int:
    """Where the answer's grid puts a moment (the window may have moved a bucket since the test began)."""
    since = datetime.fromisoformat(body["since"])
    return int((moment - since).total_seconds() // body["bucket_seconds"])


def points_of(body: dict) -> dict[int, list]:
    return {series["account_id"]: series["points"] for series in body["accounts"]}


async def test_each_account_gets_the_deepest_drawdown_of_each_bucket_of_the_last_hour(api):
    operator = await sign_up(api, role="owner")
    follower = await sign_up(api)
    falling, steady, silent = [await follower.new_account(name) for name in ("falling", "steady", "silent")]
    now = datetime.now(UTC)
    dip = floor_to(now - timedelta(minutes=40), BUCKET) + timedelta(seconds=30)  # its 3 points in one bucket
    await store_snapshots(
        api,
        falling,
        [
            at_drawdown(now - timedelta(hours=3), "50"),  # before the window
            at_drawdown(dip, "3"),
            at_drawdown(dip + timedelta(seconds=5), "7.5"),
            at_drawdown(dip + timedelta(seconds=10), "2"),
            at_drawdown(now - timedelta(seconds=1), "1"),
        ],
    )
    await store_snapshots(api, steady, [at_drawdown(now - timedelta(minutes=20), "12")])

    response = await operator.get(DRAWDOWNS, account_id=[steady, falling, silent, UNKNOWN_ACCOUNT, falling])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bucket_seconds"] == BUCKET.total_seconds()
    since, until = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
    assert until - since == timedelta(hours=1)
    assert since <= now - timedelta(minutes=58) and until > now
    assert [series["account_id"] for series in body["accounts"]] == [falling, steady]
    assert [
        (series["warning_threshold_pct"], series["critical_threshold_pct"]) for series in body["accounts"]
    ] == [
        (15, 20),
        (15, 20),
    ]
    series = points_of(body)
    expected_falling = [None] * 30
    expected_falling[bucket_of(dip, body)] = 7.5
    expected_falling[bucket_of(now - timedelta(seconds=1), body)] = 1
    assert series[falling] == expected_falling
    assert [(index, value) for index, value in enumerate(series[steady]) if value is not None] == [
        (bucket_of(now - timedelta(minutes=20), body), 12)
    ]


async def test_a_day_long_series_reads_minute_aggregates_past_the_raw_points(api):
    operator = await sign_up(api, role="admin")
    follower = await sign_up(api)
    account_id = await follower.new_account()
    now = datetime.now(UTC)
    minute = (now - timedelta(hours=20)).replace(second=0, microsecond=0)
    async with api.session() as session:
        session.add(rolled_up_minute(account_id, minute, drawdown="4", deepest="18.25"))
        await session.commit()
    # A point of that minute also still kept raw counts twice, which changes no maximum.
    await store_snapshots(
        api,
        account_id,
        [at_drawdown(minute + timedelta(seconds=30), "4"), at_drawdown(now - timedelta(minutes=3), "6")],
    )

    body = (await operator.get(DRAWDOWNS, account_id=account_id, hours=24)).json()

    assert body["bucket_seconds"] == 24 * 3600 / 30
    points = points_of(body)[account_id]
    assert len(points) == 30
    assert {index: value for index, value in enumerate(points) if value is not None} == {
        bucket_of(minute, body): 18.25,
        bucket_of(now - timedelta(minutes=3), body): 6,
    }


def rolled_up_minute(account_id: int, minute: datetime, *, drawdown: str, deepest: str) -> EquityMinute:
    equity = PEAK * (100 - Decimal(drawdown)) / 100
    lowest = PEAK * (100 - Decimal(deepest)) / 100
    return EquityMinute(
        account_id=account_id,
        minute=minute,
        snapshots=12,
        first_taken_at=minute,
        last_taken_at=minute + timedelta(seconds=55),
        equity_first=equity,
        equity_last=equity,
        equity_min=lowest,
        equity_max=equity,
        balance_first=PEAK,
        balance_last=PEAK,
        balance_min=PEAK,
        balance_max=PEAK,
        peak_equity=PEAK,
        drawdown_pct=Decimal(drawdown),
        drawdown_max_pct=Decimal(deepest),
    )


async def test_built_in_one_statement_however_many_accounts(api):
    operator = await sign_up(api, role="owner")
    follower = await sign_up(api)
    now = datetime.now(UTC)
    ids = []
    for index in range(5):
        ids.append(await follower.new_account(f"account {index}"))
        await store_snapshots(api, ids[-1], [at_drawdown(now - timedelta(minutes=index + 1), str(index))])
    with statements_sent(api) as statements:
        response = await operator.get(DRAWDOWNS, account_id=ids)

    assert response.status_code == 200
    assert [series["account_id"] for series in response.json()["accounts"]] == ids
    history_statements = [s for s in statements if "account_snapshots" in s or "equity_minutes" in s]
    assert len(history_statements) == 1, statements


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"account_id": list(range(1, 102))}, "account_id"),
        ({}, "account_id"),
        ({"account_id": "seven"}, "account_id"),
        ({"account_id": 0}, "account_id"),
        ({"account_id": 1, "hours": 25}, "hours"),
        ({"account_id": 1, "hours": 0}, "hours"),
    ],
    ids=["too-many-accounts", "no-account", "not-a-number", "zero", "more-than-a-day", "no-time"],
)
async def test_bad_parameters_answer_422_naming_the_parameter(api, params, field):
    operator = await sign_up(api, role="owner")

    response = await operator.get(DRAWDOWNS, **params)

    assert response.status_code == 422, response.text
    body = response.json()
    assert f"query.{field}" in body["detail"]
    assert {tuple(error["loc"][:2]) for error in body["errors"]} == {("query", field)}


async def test_a_follower_is_told_there_is_no_such_view_even_of_their_own_accounts(api):
    follower = await sign_up(api)
    own = await follower.new_account()
    await store_snapshots(api, own, [at_drawdown(datetime.now(UTC) - timedelta(minutes=1), "5")])

    response = await follower.get(DRAWDOWNS, account_id=own)

    assert response.status_code == 404, response.text
    assert "accounts" not in response.json()


async def test_a_role_taken_away_closes_the_view_on_the_next_request(api):
    admin = await sign_up(api, role="admin")
    own = await admin.new_account()
    assert (await admin.get(DRAWDOWNS, account_id=own)).status_code == 200

    async with api.session() as session:
        await set_role(session, api.services.cache, admin.email, "user")

    assert (await admin.get(DRAWDOWNS, account_id=own)).status_code == 401
    signed_in = await api.http.post(
        "/api/v1/auth/token", data={"username": admin.email, "password": PASSWORD}
    )
    demoted = Caller(api, admin.user_id, admin.email, "user", signed_in.json()["access_token"])
    assert (await demoted.get(DRAWDOWNS, account_id=own)).status_code == 404
