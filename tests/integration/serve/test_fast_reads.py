"""The cache-hit fast path answers exactly as the routed endpoints do, and never for the wrong caller."""

from __future__ import annotations

import pytest
from fastapi import APIRouter

from tests.support.builders import sign_up, write_state
from tradeguard.api.fast_reads import hot_reads_of
from tradeguard.metrics import CACHE_HITS, REQUEST_LATENCY
from tradeguard.queries.service import HOT_VIEWS

STATUS = "/api/v1/reconciliation/status"
POSITIONS = "/api/v1/positions/open"


def hits(view: str) -> float:
    return CACHE_HITS.labels(view)._value.get()


def answered(path: str) -> float:
    """How many 200 answers the latency series of the route at `path` has observed."""
    return sum(bucket.get() for bucket in REQUEST_LATENCY.labels("GET", path, "200")._buckets)


async def test_the_fast_path_answers_every_hot_view_at_its_routed_path(sqlite_api):
    found = {path: (read.view, read.parameters) for path, read in sqlite_api.app.hot_reads.items()}

    assert found == {
        STATUS: ("reconciliation_status", frozenset()),
        POSITIONS: ("open_positions", frozenset({"symbol"})),
        "/api/v1/guards/status": ("guard_status", frozenset()),
    }
    assert {view for view, _ in found.values()} == set(HOT_VIEWS)


def test_a_hot_read_takes_its_parameters_from_its_route():
    router = APIRouter(prefix="/v2")

    @router.get("/open")
    async def open_positions(account_id: int | None = None, symbol: str | None = None, side: str = "buy"):
        return {}

    @router.get("/status")
    async def reconciliation_logs(account_id: int | None = None):
        return {}

    found = hot_reads_of(router.routes, prefix="/api")

    assert list(found) == ["/api/v2/open"]
    assert found["/api/v2/open"].view == "open_positions"
    assert found["/api/v2/open"].parameters == {"symbol", "side"}


def test_a_route_named_after_a_hot_view_but_not_keyed_by_account_is_refused():
    router = APIRouter()

    @router.get("/accounts/{account_id}/status")
    async def guard_status(account_id: int):
        return {}

    with pytest.raises(TypeError, match="not keyed like one"):
        hot_reads_of(router.routes)


async def test_a_repeated_read_is_served_from_the_cache_byte_for_byte(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(
        api, account_id, positions=[{"symbol": "EURUSD"}, {"symbol": "GBPUSD"}], status="healthy"
    )

    observed_before = answered(POSITIONS)
    built = await caller.get(POSITIONS, account_id=account_id, symbol="EURUSD")
    before = hits("open_positions")
    served = await caller.get(POSITIONS, account_id=account_id, symbol="EURUSD")

    assert hits("open_positions") == before + 1
    assert answered(POSITIONS) == observed_before + 2, "the routed answer and the fast one, in one series"
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
