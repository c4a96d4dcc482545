"""The operator's platform view: every account, ranked by what needs attention, for operators only."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson

from tests.support.builders import NOW, PASSWORD, Caller, sign_up, write_state
from tests.support.platform import ACCOUNTS_BY_ATTENTION, add_commands
from tests.support.statements import statements_sent
from tradeguard.auth.users import set_role
from tradeguard.cache import invalidate_accounts
from tradeguard.store.models import Account, ExpectedTrade

PLATFORM = "/api/v1/platform/accounts"

EXPECTED_STATUS = {
    "halted deep": ["halted", "critical"],
    "halted shallow": ["halted"],
    "critical": ["critical", "stale_feed"],
    "stale": ["stale_feed"],
    "divergent": ["divergent", "commands_failed"],
    "outstanding": ["commands_outstanding"],
    "failed": ["commands_failed"],
    "warning deep": ["warning"],
    "warning shallow": ["warning"],
    "fine": [],
    "fine never synced": [],
}


async def _operator(api, role: str = "owner") -> Caller:
    return await sign_up(api, role=role)


async def _add_trade(api, account_id: int, signal_id: str, status: str) -> None:
    async with api.session() as session:
        session.add(
            ExpectedTrade(
                account_id=account_id,
                trade_id=uuid.uuid4().hex,
                symbol="EURUSD",
                side="buy",
                volume=Decimal("0.10"),
                entry_price=Decimal("1.085"),
                signal_id=signal_id,
                received_at=NOW,
                status=status,
                closed_at=NOW if status == "closed" else None,
                body_digest="0" * 64,
            )
        )
        owner_id = (await session.get(Account, account_id)).owner_id
        await session.commit()
    await invalidate_accounts(api.services.cache, {account_id: owner_id})


async def _platform_of_one_follower(api, broker: str = "ICMarkets") -> tuple[Caller, dict[str, int]]:
    """A follower with an account in every state, shuffled in creation order."""
    follower = await sign_up(api)
    ids = {}
    for name, state, commands in reversed(ACCOUNTS_BY_ATTENTION):
        ids[name] = await follower.new_account(name, broker=broker, login=uuid.uuid4().hex[:12])
        if state:
            await write_state(api, ids[name], **state)
        if commands:
            await add_commands(api, ids[name], commands)
    return follower, ids


async def test_every_account_ranked_by_what_needs_attention_with_counts(api):
    operator = await _operator(api)
    follower, ids = await _platform_of_one_follower(api)

    response = await operator.get(PLATFORM, owner_id=follower.user_id)

    assert response.status_code == 200, response.text
    body = response.json()
    assert [row["name"] for row in body["accounts"]] == [name for name, _, _ in ACCOUNTS_BY_ATTENTION]
    assert {row["name"]: row["attention"] for row in body["accounts"]} == EXPECTED_STATUS
    assert {row["name"]: row["status"] for row in body["accounts"]} == {
        name: (reasons[0] if reasons else "ok") for name, reasons in EXPECTED_STATUS.items()
    }
    assert body["counts"] == {
        "halted": 2,
        "critical": 1,
        "stale_feed": 1,
        "divergent": 1,
        "commands_outstanding": 1,
        "commands_failed": 1,
        "warning": 2,
        "ok": 2,
    }
    assert body["total"] == len(ACCOUNTS_BY_ATTENTION)
    assert body["next_cursor"] is None
    rows = {row["name"]: row for row in body["accounts"]}
    halted = rows["halted deep"]
    assert halted["account_id"] == ids["halted deep"]
    assert halted["owner_id"] == follower.user_id
    assert (halted["broker"], halted["currency"]) == ("ICMarkets", "USD")
    assert halted["trading_allowed"] is False
    assert halted["halt_reason"] == "drawdown 25% >= critical 20%"
    assert halted["halted_at"].startswith("2026-11-25T12:00:00")
    assert (halted["drawdown_level"], halted["drawdown_pct"]) == ("critical", 25)
    assert rows["outstanding"]["outstanding_commands"] == 2
    assert rows["outstanding"]["failed_commands"] == 0
    assert rows["divergent"]["open_divergences"] == 2
    assert rows["divergent"]["failed_commands"] == 1
    assert rows["critical"]["feed_stale"] is True
    assert rows["fine never synced"]["last_sync_at"] is None
    assert rows["fine never synced"]["equity"] is None


async def test_a_row_carries_what_an_account_card_shows_its_sync_and_market_guard(api):
    operator = await _operator(api)
    follower = await sign_up(api)
    gapped = await follower.new_account("gapped")
    quiet = await follower.new_account("quiet")
    levels = {"XAUUSD": {"level": "warning", "gap_pct": 2.1}, "EURUSD": {"level": "critical"}}
    await write_state(
        api, gapped, status="warning", total_syncs=7, market_levels=orjson.dumps(levels).decode()
    )

    rows = {
        row["name"]: row
        for row in (await operator.get(PLATFORM, owner_id=follower.user_id)).json()["accounts"]
    }

    assert {
        name: (row["sync_status"], row["total_syncs"], row["market_level"]) for name, row in rows.items()
    } == {
        "gapped": ("warning", 7, "critical"),
        "quiet": ("idle", 0, "normal"),
    }
    assert quiet == rows["quiet"]["account_id"]


async def test_filters_narrow_the_page_and_counts_ignore_only_the_status_filter(api):
    operator = await _operator(api, role="admin")
    follower, ids = await _platform_of_one_follower(api, broker=f"broker-{uuid.uuid4().hex[:8]}")
    broker = (await operator.get(PLATFORM, owner_id=follower.user_id)).json()["accounts"][0]["broker"]
    signal = f"signal-{uuid.uuid4().hex[:8]}"
    await _add_trade(api, ids["critical"], signal, "open")
    await _add_trade(api, ids["warning deep"], signal, "open")
    await _add_trade(api, ids["fine"], signal, "closed")
    await _add_trade(api, ids["stale"], "another signal", "open")

    warnings = (await operator.get(PLATFORM, owner_id=follower.user_id, status="warning")).json()
    by_broker = (await operator.get(PLATFORM, broker=broker)).json()
    by_signal = (await operator.get(PLATFORM, signal=signal)).json()
    by_signal_and_status = (await operator.get(PLATFORM, signal=signal, status="critical")).json()

    assert [row["name"] for row in warnings["accounts"]] == ["warning deep", "warning shallow"]
    assert warnings["total"] == 2
    assert warnings["counts"]["halted"] == 2
    assert [row["account_id"] for row in by_broker["accounts"]] == [
        ids[name] for name, _, _ in ACCOUNTS_BY_ATTENTION
    ]
    assert [row["name"] for row in by_signal["accounts"]] == ["critical", "warning deep"]
    assert by_signal["counts"] == {**dict.fromkeys(by_signal["counts"], 0), "critical": 1, "warning": 1}
    assert [row["name"] for row in by_signal_and_status["accounts"]] == ["critical"]
    assert (await operator.get(PLATFORM, owner_id=follower.user_id, status="frozen")).status_code == 422


async def test_pages_follow_the_ranking_to_the_end(api):
    operator = await _operator(api)
    follower, _ = await _platform_of_one_follower(api)
    names, cursor, pages = [], None, 0
    while True:
        params = {"owner_id": follower.user_id, "limit": 4, **({"cursor": cursor} if cursor else {})}
        body = (await operator.get(PLATFORM, **params)).json()
        names += [row["name"] for row in body["accounts"]]
        pages += 1
        assert body["total"] == len(ACCOUNTS_BY_ATTENTION)
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert names == [name for name, _, _ in ACCOUNTS_BY_ATTENTION]


async def test_fresh_after_a_write_to_any_account(api):
    operator = await _operator(api)
    follower = await sign_up(api)
    halted = await follower.new_account("halted")
    await write_state(api, halted, trading_allowed=False, halted_at=NOW, halt_reason="drawdown")
    for _ in range(2):
        before = (await operator.get(PLATFORM, owner_id=follower.user_id)).json()
    assert [(row["account_id"], row["status"]) for row in before["accounts"]] == [(halted, "halted")]

    rearm = await follower.post(f"/api/v1/accounts/{halted}/guard/rearm", json={})
    added = await follower.new_account("added")

    after = (await operator.get(PLATFORM, owner_id=follower.user_id)).json()
    assert rearm.status_code == 200, rearm.text
    assert [(row["account_id"], row["status"]) for row in after["accounts"]] == [
        (halted, "ok"),
        (added, "ok"),
    ]
    assert after["accounts"][0]["trading_allowed"] is True


async def test_a_follower_is_told_there_is_no_platform_view(api):
    follower = await sign_up(api)
    await follower.new_account()

    for params in ({}, {"owner_id": follower.user_id}, {"status": "ok"}):
        response = await follower.get(PLATFORM, **params)
        assert response.status_code == 404, response.text
        assert "accounts" not in response.json()


async def test_a_role_taken_away_closes_the_view_on_the_next_request(api):
    admin = await _operator(api, role="admin")
    assert (await admin.get(PLATFORM, owner_id=admin.user_id)).status_code == 200

    async with api.session() as session:
        await set_role(session, api.services.cache, admin.email, "user")

    assert (await admin.get(PLATFORM, owner_id=admin.user_id)).status_code == 401
    signed_in = await api.http.post(
        "/api/v1/auth/token", data={"username": admin.email, "password": PASSWORD}
    )
    demoted = Caller(api, admin.user_id, admin.email, "user", signed_in.json()["access_token"])
    assert (await demoted.get(PLATFORM, owner_id=admin.user_id)).status_code == 404


async def test_built_in_two_statements_however_many_accounts(api):
    operator = await _operator(api)
    follower, _ = await _platform_of_one_follower(api)
    with statements_sent(api) as statements:
        # A page nobody asked for yet: built from the database, not answered from the cache.
        response = await operator.get(PLATFORM, owner_id=follower.user_id, limit=7)

    assert response.status_code == 200
    assert len(response.json()["accounts"]) == 7
    platform_statements = [s for s in statements if "account_states" in s]
    assert len(platform_statements) == 2, statements
