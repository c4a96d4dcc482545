"""The read-model cache: hits, per-account invalidation, the epoch rule, and Redis failing under requests."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.conftest import (
    REDIS_URL,
    make_settings,
    require_service,
    start_api,
    stop_api,
)
from tests.support import sign_up, write_state
from tradeguard.cache import MemoryCache, RedisCache
from tradeguard.redis_client import fail_fast_redis

STATUS = "/api/v1/reconciliation/status"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def cache_with_clock(request) -> AsyncIterator[tuple[object, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        yield MemoryCache(ttl_seconds=5, max_entries=100, clock=clock), clock
        return
    require_service("Redis", "127.0.0.1", 6379)
    namespace = f"tg:test:{os.getpid()}:{id(clock)}:"
    client = fail_fast_redis(REDIS_URL, timeout_seconds=1)
    yield RedisCache(client, ttl_seconds=5, retry_seconds=1, namespace=namespace, wall_clock=clock), clock
    await client.aclose()


async def test_a_put_after_a_miss_is_served_until_the_scope_is_invalidated(cache_with_clock):
    cache, _ = cache_with_clock

    miss = await cache.get("a:1", "status")
    await cache.put("a:1", "status", b"old", miss)
    hit = await cache.get("a:1", "status")
    await cache.invalidate(["a:1"])
    after = await cache.get("a:1", "status")

    assert miss.value is None
    assert hit.value == b"old"
    assert after.value is None


async def test_invalidating_one_account_leaves_others_cached(cache_with_clock):
    cache, _ = cache_with_clock
    for scope in ("a:1", "a:2"):
        await cache.put(scope, "status", scope.encode(), await cache.get(scope, "status"))

    await cache.invalidate(["a:1"])

    assert (await cache.get("a:1", "status")).value is None
    assert (await cache.get("a:2", "status")).value == b"a:2"


async def test_a_reader_that_missed_before_a_write_cannot_cache_its_stale_result(cache_with_clock):
    cache, _ = cache_with_clock
    slow_reader = await cache.get("a:1", "status")

    await cache.invalidate(["a:1"])
    await cache.put("a:1", "status", b"built before the write", slow_reader)

    assert (await cache.get("a:1", "status")).value is None


async def test_entries_expire_after_the_ttl_safety_net(cache_with_clock):
    cache, clock = cache_with_clock
    await cache.put("a:1", "status", b"v", await cache.get("a:1", "status"))

    clock.now += 4.9
    still = await cache.get("a:1", "status")
    clock.now += 0.2
    expired = await cache.get("a:1", "status")

    assert still.value == b"v"
    assert expired.value is None


async def test_memory_cache_evicts_the_least_recent_scope_when_full():
    cache = MemoryCache(ttl_seconds=60, max_entries=2)
    for scope in ("a:1", "a:2", "a:3"):
        await cache.put(scope, "status", scope.encode(), await cache.get(scope, "status"))

    assert (await cache.get("a:1", "status")).value is None
    assert (await cache.get("a:3", "status")).value == b"a:3"


async def test_a_read_after_a_write_is_never_stale_and_repeated_reads_hit(api):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(api, account_id, status="healthy", total_syncs=1)
    first = (await caller.get(STATUS, account_id=account_id)).json()
    lookups_before = await api.services.cache.get(
        f"a:{account_id}", f"reconciliation_status:{caller.user_id}?"
    )

    await write_state(api, account_id, status="warning", total_syncs=2, divergences_detected=1)
    second = (await caller.get(STATUS, account_id=account_id)).json()
    all_accounts = (await caller.get(STATUS)).json()

    assert first["total_syncs"] == 1
    assert lookups_before.hit
    assert (second["status"], second["total_syncs"]) == ("warning", 2)
    assert all_accounts["total_syncs"] == 2


@pytest.fixture
async def api_on_private_redis(private_redis, tmp_path):
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}",
        private_redis.url,
        redis_timeout_seconds=0.2,
        redis_retry_seconds=0.3,
    )
    running, lifespan = await start_api(settings)
    yield running
    await stop_api(running, lifespan)


async def test_redis_killed_under_requests_fails_none_and_logs_once(
    api_on_private_redis, private_redis, caplog
):
    api = api_on_private_redis
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(api, account_id, status="healthy", total_syncs=1)
    assert (await caller.get(STATUS, account_id=account_id)).json()["total_syncs"] == 1

    caplog.set_level(logging.WARNING, logger="tradeguard.cache.redis")
    private_redis.kill()
    during = [await caller.get(STATUS, account_id=account_id) for _ in range(20)]
    await write_state(api, account_id, status="warning", total_syncs=2)
    after_write = await caller.get(STATUS, account_id=account_id)
    health = (await api.http.get("/api/v1/trading/health")).json()

    assert {response.status_code for response in during} == {200}
    assert after_write.json()["total_syncs"] == 2
    assert health["status"] == "degraded" and health["checks"]["cache"]["status"] == "down"
    outage_logs = [record for record in caplog.records if "unreachable" in record.getMessage()]
    assert len(outage_logs) == 1


async def test_redis_comes_back_by_itself_and_serves_hits_again(api_on_private_redis, private_redis):
    api = api_on_private_redis
    caller = await sign_up(api)
    account_id = await caller.new_account()
    private_redis.kill()
    assert (await caller.get(STATUS, account_id=account_id)).status_code == 200

    await private_redis.start()
    await asyncio.sleep(0.4)
    await caller.get(STATUS, account_id=account_id)
    lookup = await api.services.cache.get(f"a:{account_id}", f"reconciliation_status:{caller.user_id}?")

    assert lookup.hit


async def test_writes_during_a_redis_stall_are_invalidated_when_it_returns(
    api_on_private_redis, private_redis
):
    api = api_on_private_redis
    caller = await sign_up(api)
    account_id = await caller.new_account()
    await write_state(api, account_id, status="healthy", total_syncs=1, equity=Decimal("100"))
    assert (await caller.get(STATUS, account_id=account_id)).json()["total_syncs"] == 1

    private_redis.pause()
    await write_state(api, account_id, status="warning", total_syncs=2)
    stalled = await caller.get(STATUS, account_id=account_id)
    private_redis.resume()
    await asyncio.sleep(0.4)
    recovered = await caller.get(STATUS, account_id=account_id)

    assert stalled.status_code == 200 and stalled.json()["total_syncs"] == 2
    assert recovered.json()["total_syncs"] == 2
