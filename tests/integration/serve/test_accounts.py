"""Creating and listing accounts, and reading and changing an account's guard configuration."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal

import pytest

from tests.support.builders import sign_up

ACCOUNTS_URL = "/api/v1/accounts"

DEFAULT_GUARD_CONFIG = {
    "drawdown_warning_pct": Decimal("15"),
    "drawdown_critical_pct": Decimal("20"),
    "min_equity": Decimal("100"),
    "daily_loss_limit_pct": None,
    "daily_loss_anchor": "balance",
    "daily_reset_time": "00:00",
    "daily_reset_tz": "UTC",
    "critical_confirmations": 1,
    "auto_close_drawdown": True,
    "auto_close_market": True,
    "gap_warning_pct": Decimal("5"),
    "gap_critical_pct": Decimal("10"),
    "spread_warning_pct": Decimal("0.5"),
    "spread_critical_pct": Decimal("1"),
    "stale_after_seconds": 60,
    "grace_seconds": 30,
    "match_window_seconds": 300,
    "entry_slippage_pips": Decimal("2"),
}
DECIMAL_FIELDS = {name for name, value in DEFAULT_GUARD_CONFIG.items() if isinstance(value, Decimal)} | {
    "daily_loss_limit_pct"
}


def guard_config_url(account_id: int) -> str:
    return f"{ACCOUNTS_URL}/{account_id}/guard-config"


def as_config(body: dict) -> dict:
    """The response body with its numbers as exact decimals, whether the API sends them as JSON numbers or strings."""
    return {
        name: (Decimal(str(value)) if name in DECIMAL_FIELDS and value is not None else value)
        for name, value in body.items()
    }


async def all_listed_ids(caller, limit: int = 500) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        params = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = await caller.get(ACCOUNTS_URL, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [account["id"] for account in page["accounts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_create_returns_201_with_the_stored_account(alice):
    caller = alice

    response = await caller.post(
        ACCOUNTS_URL,
        json={"name": "Follower One", "broker": "ICMarkets", "login": "5012345", "currency": "EUR"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "owner_id", "name", "broker", "login", "currency", "created_at"}
    assert isinstance(body["id"], int)
    assert body["owner_id"] == caller.user_id
    assert (body["name"], body["broker"], body["login"], body["currency"]) == (
        "Follower One",
        "ICMarkets",
        "5012345",
        "EUR",
    )
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_create_with_only_a_name_defaults_to_usd(alice):
    caller = alice

    response = await caller.post(ACCOUNTS_URL, json={"name": "Minimal"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["currency"] == "USD"
    assert body["broker"] is None
    assert body["login"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "Bad currency", "currency": "usd"}, "currency"),
        ({"name": "Bad currency", "currency": "US"}, "currency"),
        ({"name": "Bad currency", "currency": "DOLLARS!"}, "currency"),
        ({"name": "Extra", "balance": 10_000}, "balance"),
    ],
    ids=[
        "empty-name",
        "blank-name",
        "no-name",
        "long-name",
        "lowercase",
        "too-short",
        "not-a-code",
        "unknown-field",
    ],
)
async def test_create_rejects_invalid_bodies_with_a_message_naming_the_field(sqlite_user, body, field):
    before = await all_listed_ids(sqlite_user)

    response = await sqlite_user.post(ACCOUNTS_URL, json=body)

    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert await all_listed_ids(sqlite_user) == before


async def test_registering_the_same_broker_and_login_twice_is_a_409_naming_the_account(alice):
    broker = f"Broker-{uuid.uuid4().hex[:8]}"
    first = await alice.post(ACCOUNTS_URL, json={"name": "One", "broker": broker, "login": 5012345})
    before = await all_listed_ids(alice)

    again = await alice.post(ACCOUNTS_URL, json={"name": "Two", "broker": broker, "login": "5012345"})

    assert first.status_code == 201, first.text
    assert again.status_code == 409, again.text
    assert again.json()["detail"] == (
        f"broker {broker} login 5012345 is already registered as account {first.json()['id']}"
    )
    assert await all_listed_ids(alice) == before


async def test_registrations_of_one_broker_and_login_at_once_store_one_account(alice):
    broker = f"Broker-{uuid.uuid4().hex[:8]}"
    before = await all_listed_ids(alice)

    answers = await asyncio.gather(
        *(
            alice.post(ACCOUNTS_URL, json={"name": f"Racer {n}", "broker": broker, "login": "7"})
            for n in range(4)
        )
    )

    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409]
    assert len(await all_listed_ids(alice)) == len(before) + 1


@pytest.mark.parametrize(
    "differing",
    [
        pytest.param({"login": "5012346"}, id="another-login"),
        pytest.param({"broker": "Other"}, id="another-broker"),
    ],
)
async def test_another_broker_or_login_is_another_account(alice, differing):
    registered = {"broker": f"Broker-{uuid.uuid4().hex[:8]}", "login": "5012345"}
    await alice.post(ACCOUNTS_URL, json={"name": "One", **registered})

    response = await alice.post(ACCOUNTS_URL, json={"name": "Two", **registered, **differing})

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("left_out", ["broker", "login"])
async def test_without_a_broker_or_a_login_the_rest_may_repeat(alice, left_out):
    given = {"broker": f"Broker-{uuid.uuid4().hex[:8]}", "login": "5012345", left_out: None}

    answers = [await alice.post(ACCOUNTS_URL, json={"name": name, **given}) for name in ("One", "Two")]

    assert [answer.status_code for answer in answers] == [201, 201]


async def test_another_user_may_register_the_same_broker_and_login(alice, bob):
    broker = f"Broker-{uuid.uuid4().hex[:8]}"
    mine = await alice.post(ACCOUNTS_URL, json={"name": "Mine", "broker": broker, "login": "5012345"})

    theirs = await bob.post(ACCOUNTS_URL, json={"name": "Theirs", "broker": broker, "login": "5012345"})

    assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text


async def test_create_requires_a_token(api):
    response = await api.http.post(ACCOUNTS_URL, json={"name": "Anonymous"})

    assert response.status_code == 401


async def test_a_user_lists_only_their_own_accounts(api):
    alice = await sign_up(api)
    bob = await sign_up(api)
    alice_ids = [await alice.new_account("Alice 1"), await alice.new_account("Alice 2")]
    bob_ids = [await bob.new_account("Bob 1")]

    response = await alice.get(ACCOUNTS_URL)

    assert response.status_code == 200, response.text
    page = response.json()
    assert [account["id"] for account in page["accounts"]] == alice_ids
    assert {account["owner_id"] for account in page["accounts"]} == {alice.user_id}
    assert page["next_cursor"] is None
    assert await all_listed_ids(bob) == bob_ids


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_privileged_roles_list_every_account(api, alice, bob, role):
    others = {await alice.new_account("Alice"), await bob.new_account("Bob")}
    privileged = await sign_up(api, role)
    own = await privileged.new_account("Their own")

    listed = await all_listed_ids(privileged)

    assert others | {own} <= set(listed)
    assert listed == sorted(listed)


async def test_account_list_pages_with_a_cursor(api):
    caller = await sign_up(api)
    created = [await caller.new_account(f"Paged {n}") for n in range(5)]

    pages = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        response = await caller.get(ACCOUNTS_URL, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([account["id"] for account in page["accounts"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == [created[0:2], created[2:4], created[4:5]]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"cursor": -1}, {"limit": "many"}])
async def test_account_list_rejects_bad_paging_parameters(sqlite_user, params):
    response = await sqlite_user.get(ACCOUNTS_URL, **params)

    assert response.status_code == 422, response.text
    assert next(iter(params)) in response.json()["detail"]


async def test_another_users_guard_config_is_404_for_get_and_put(alice, bob):
    owner, stranger = alice, bob
    account_id = await owner.new_account()

    read = await stranger.get(guard_config_url(account_id))
    write = await stranger.put(guard_config_url(account_id), json={"auto_close_drawdown": False})

    assert read.status_code == 404, read.text
    assert write.status_code == 404, write.text
    assert read.json()["detail"] == write.json()["detail"] == f"account {account_id} not found"
    after = await owner.get(guard_config_url(account_id))
    assert after.json()["auto_close_drawdown"] is True


async def test_unknown_account_guard_config_is_404(alice):
    response = await alice.get(guard_config_url(2_000_000_000))

    assert response.status_code == 404, response.text


async def test_a_new_account_has_the_default_guard_config(alice):
    caller = alice
    account_id = await caller.new_account()

    response = await caller.get(guard_config_url(account_id))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body.pop("account_id") == account_id
    assert as_config(body) == DEFAULT_GUARD_CONFIG


async def test_partial_update_changes_only_the_given_fields_and_persists(alice):
    caller = alice
    account_id = await caller.new_account()
    changes = {
        "drawdown_warning_pct": 8,
        "drawdown_critical_pct": "12.5",
        "daily_loss_limit_pct": 4,
        "daily_reset_time": "17:00",
        "daily_reset_tz": "America/New_York",
        "auto_close_drawdown": False,
        "critical_confirmations": 3,
    }

    response = await caller.put(guard_config_url(account_id), json=changes)

    assert response.status_code == 200, response.text
    expected = DEFAULT_GUARD_CONFIG | {
        "drawdown_warning_pct": Decimal("8"),
        "drawdown_critical_pct": Decimal("12.5"),
        "daily_loss_limit_pct": Decimal("4"),
        "daily_reset_time": "17:00",
        "daily_reset_tz": "America/New_York",
        "auto_close_drawdown": False,
        "critical_confirmations": 3,
    }
    returned = response.json()
    assert returned.pop("account_id") == account_id
    assert as_config(returned) == expected
    stored = (await caller.get(guard_config_url(account_id))).json()
    stored.pop("account_id")
    assert as_config(stored) == expected


async def test_updates_accumulate_and_null_clears_the_daily_loss_limit(alice):
    caller = alice
    account_id = await caller.new_account()

    first = await caller.put(
        guard_config_url(account_id), json={"daily_loss_limit_pct": 5, "min_equity": 250}
    )
    second = await caller.put(guard_config_url(account_id), json={"daily_loss_limit_pct": None})

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    stored = as_config((await caller.get(guard_config_url(account_id))).json())
    assert stored["daily_loss_limit_pct"] is None
    assert stored["min_equity"] == Decimal("250")


async def test_reset_time_is_stored_as_hours_and_minutes(sqlite_user):
    caller = sqlite_user
    account_id = await caller.new_account()

    response = await caller.put(guard_config_url(account_id), json={"daily_reset_time": "09:30:00"})

    assert response.status_code == 200, response.text
    assert response.json()["daily_reset_time"] == "09:30"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"drawdown_warning_pct": 25}, ["drawdown_warning_pct", "drawdown_critical_pct"]),
        (
            {"drawdown_warning_pct": 12, "drawdown_critical_pct": 12},
            ["drawdown_warning_pct", "drawdown_critical_pct"],
        ),
        ({"gap_warning_pct": 10}, ["gap_warning_pct", "gap_critical_pct"]),
        ({"spread_warning_pct": 2, "spread_critical_pct": 1}, ["spread_warning_pct", "spread_critical_pct"]),
        ({"drawdown_warning_pct": -1}, ["drawdown_warning_pct"]),
        ({"min_equity": -0.01}, ["min_equity"]),
        ({"drawdown_critical_pct": 101}, ["drawdown_critical_pct"]),
        ({"daily_loss_limit_pct": 100.5}, ["daily_loss_limit_pct"]),
        ({"critical_confirmations": 0}, ["critical_confirmations"]),
        ({"daily_loss_anchor": "margin"}, ["daily_loss_anchor"]),
        ({"min_equity": 500, "max_leverage": 30}, ["max_leverage"]),
        ({"min_equity": 500, "daily_reset_tz": "Mars/Olympus_Mons"}, ["daily_reset_tz"]),
        ({"min_equity": 500, "daily_reset_time": "25:00"}, ["daily_reset_time"]),
        ({"min_equity": 500, "daily_reset_time": "noon"}, ["daily_reset_time"]),
    ],
    ids=[
        "warning-above-critical",
        "warning-equals-critical",
        "gap-warning-equals-critical",
        "spread-warning-above-critical",
        "negative-percent",
        "negative-min-equity",
        "percent-over-100",
        "daily-limit-over-100",
        "zero-confirmations",
        "unknown-anchor",
        "unknown-field",
        "bad-time-zone",
        "bad-reset-hour",
        "reset-time-not-a-time",
    ],
)
async def test_invalid_update_is_422_naming_the_fields_and_changes_nothing(alice, changes, named):
    caller = alice
    account_id = await caller.new_account()
    earlier = {"drawdown_warning_pct": 11, "min_equity": 150, "daily_reset_tz": "Europe/London"}
    assert (await caller.put(guard_config_url(account_id), json=earlier)).status_code == 200
    before = (await caller.get(guard_config_url(account_id))).json()

    response = await caller.put(guard_config_url(account_id), json=changes)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    for field in named:
        assert field in detail, detail
    after = (await caller.get(guard_config_url(account_id))).json()
    assert after == before
    assert as_config(after)["min_equity"] == Decimal("150")
