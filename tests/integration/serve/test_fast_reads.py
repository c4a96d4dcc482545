"""The cache-hit fast path answers exactly as the routed endpoints do, and never for the wrong caller."""

from __future__ import annotations

from tests.support.builders import sign_up, write_state
from tradeguard.metrics import CACHE_HITS

STATUS = "/api/v1/reconciliation/status"
POSITIONS = "/api/v1/positions/open"


def hits(view: str) -> float:
    return CACHE_HITS.labels(view)._value.get()


async def test_a_repeated_read_is_served_from_the_cache_byte_for_byte(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api, account_id, positions=[{"symbol": "EURUSD"}, {"symbol": "GBPUSD"}], status="healthy"
    )

    built = await caller.get(POSITIONS, account_id=account_id, symbol="EURUSD")
    before = hits("open_positions")
    served = await caller.get(POSITIONS, account_id=account_id, symbol="EURUSD")

    assert hits("open_positions") == before + 1
    assert served.status_code == 200
    assert served.content == built.content
    assert served.headers["content-type"] == "application/json"


async def test_a_cached_account_is_never_served_to_someone_who_may_not_see_it(api):
    owner = await sign_up(api)
    stranger = await sign_up(api)
    account_id = await owner.new_account()
    await write_state(api, account_id, status="warning", divergences_detected=3)
    await owner.get(STATUS, account_id=account_id)
    await owner.get(STATUS, account_id=account_id)

    refused = await stranger.get(STATUS, account_id=account_id)

    assert refused.status_code == 404
    assert "divergences" not in refused.text


async def test_unusual_requests_go_to_the_routed_endpoint_for_its_answer(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await caller.get(STATUS, account_id=account_id)

    unknown_parameter = await caller.get(STATUS, account_id=account_id, verbose="1")
    bad_account = await caller.api.http.get(STATUS + "?account_id=abc", headers=caller.headers)
    junk_token = await caller.api.http.get(STATUS, headers={"Authorization": "Bearer junk"})

    assert unknown_parameter.status_code == 200
    assert bad_account.status_code == 422
    assert junk_token.status_code == 401
