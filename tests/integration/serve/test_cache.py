"""The read-model cache: hits, per-account invalidation, the epoch rule, and Redis failing under requests."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from tests.support.apps import make_settings, start_api, stop_api, two_api_processes
from tests.support.builders import sign_up, write_state
from tests.support.net import free_port
from tests.support.services import REDIS_URL, require_service
from tradeguard.cache import MemoryCache, RedisCache
from tradeguard.cache.epochs import SharedEpochs
from tradeguard.redis_client import fail_fast_redis

STATUS = "/api/v1/reconciliation/status"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def cache_with_clock(request, tmp_path) -> AsyncIterator[tuple[object, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        yield MemoryCache(ttl_seconds=5, max_entries=100, clock=clock), clock
        return
    require_service("Redis", "127.0.0.1", 6379)
    namespace = f"tg:test:{os.getpid()}:{id(clock)}:"
    client = fail_fast_redis(REDIS_URL, timeout_seconds=1)
    host = SharedEpochs(tmp_path / "epochs")
    yield (
        RedisCache(client, host, ttl_seconds=5, retry_seconds=1, namespace=namespace, wall_clock=clock),
        clock,
    )
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


OUTAGE_SETTINGS = {"redis_timeout_seconds": 0.2, "redis_retry_seconds": 0.3}


async def _total_syncs(caller, account_id: int) -> int:
    return (await caller.get(STATUS, account_id=account_id)).json()["total_syncs"]


async def _reads_for_a_second(caller, account_id: int) -> list[int]:
    """What a reader sees while the processes reconnect, fail over and take up Redis again."""
    seen = []
    for _ in range(10):
        seen.append(await _total_syncs(caller, account_id))
        await asyncio.sleep(0.1)
    return seen


async def _write_then_read_on_the_other(
    processes, callers, account_id: int, first_sync: int, count: int = 10
) -> list[tuple]:
    """Each process in turn writes, and the other reads at once: (written, read) for every probe."""
    probes = []
    for sync in range(first_sync, first_sync + count):
        writing, reading = sync % 2, 1 - sync % 2
        await write_state(processes[writing].api, account_id, total_syncs=sync)
        probes.append((sync, await _total_syncs(callers[reading], account_id)))
    return probes


async def test_after_redis_returns_with_its_data_no_process_reads_an_entry_an_outage_write_replaced(
    persistent_redis, tmp_path
):
    async with two_api_processes(tmp_path, persistent_redis.url, **OUTAGE_SETTINGS) as processes:
        writer = await sign_up(processes[0].api)
        reader = replace(writer, api=processes[1].api)
        account_id = await writer.new_account()
        await write_state(processes[0].api, account_id, total_syncs=1)
        cached = [await _total_syncs(reader, account_id) for _ in range(2)]

        persistent_redis.kill()
        await write_state(processes[0].api, account_id, total_syncs=2)
        await persistent_redis.start()
        after_restart = await _reads_for_a_second(reader, account_id)
        probes = await _write_then_read_on_the_other(processes, [writer, reader], account_id, 3)
        await _total_syncs(reader, account_id)
        served_from_redis_again = await processes[0].api.services.cache.get(
            f"a:{account_id}", f"reconciliation_status:{writer.user_id}?"
        )

    assert cached == [1, 1]
    assert after_restart == [2] * 10
    assert served_from_redis_again.hit
    assert [read for _, read in probes] == [written for written, _ in probes]


async def test_after_redis_thaws_no_process_reads_an_entry_a_write_during_the_freeze_replaced(
    private_redis, tmp_path
):
    async with two_api_processes(tmp_path, private_redis.url, **OUTAGE_SETTINGS) as processes:
        writer = await sign_up(processes[0].api)
        reader = replace(writer, api=processes[1].api)
        accounts = [await writer.new_account() for _ in range(2)]
        for account_id in accounts:
            await write_state(processes[0].api, account_id, total_syncs=1)
            await _total_syncs(reader, account_id)

        private_redis.pause()
        # The first invalidation times out; the second comes while the writer leaves Redis alone.
        for account_id in accounts:
            await write_state(processes[0].api, account_id, total_syncs=2)
        private_redis.resume()
        after_thaw = [await _reads_for_a_second(reader, account_id) for account_id in accounts]
        probes = await _write_then_read_on_the_other(processes, [writer, reader], accounts[1], 3)

    assert after_thaw == [[2] * 10] * 2
    assert [read for _, read in probes] == [written for written, _ in probes]


async def _freeze_again_and_again(redis) -> None:
    while True:
        redis.pause()
        await asyncio.sleep(0.3)
        redis.resume()
        await asyncio.sleep(0.3)


async def _read_again_and_again(caller, account_id: int) -> None:
    """Other readers of the account, filling Redis and meeting its freezes at their own moments."""
    while True:
        await _total_syncs(caller, account_id)
        await asyncio.sleep(0.02)


async def test_write_then_read_probes_never_see_an_older_value_while_redis_keeps_freezing(
    private_redis, tmp_path
):
    async with two_api_processes(tmp_path, private_redis.url, **OUTAGE_SETTINGS) as processes:
        writer = await sign_up(processes[0].api)
        callers = [writer, replace(writer, api=processes[1].api)]
        account_id = await writer.new_account()
        await write_state(processes[0].api, account_id, total_syncs=1)
        for caller in callers:
            await _total_syncs(caller, account_id)

        background = [
            asyncio.create_task(_freeze_again_and_again(private_redis)),
            *(asyncio.create_task(_read_again_and_again(caller, account_id)) for caller in callers),
        ]
        try:
            probes = await _write_then_read_on_the_other(processes, callers, account_id, 2, count=30)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            private_redis.resume()

    assert [read for _, read in probes] == [written for written, _ in probes]


async def test_an_outage_write_by_a_process_that_has_exited_since_stays_visible_when_redis_returns(
    persistent_redis, tmp_path
):
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    shared = {"cache_namespace": f"tg:test:{uuid.uuid4().hex}:", **OUTAGE_SETTINGS}
    reading, reading_lifespan = await start_api(
        make_settings(tmp_path, database, persistent_redis.url, **shared)
    )
    writing, writing_lifespan = await start_api(
        make_settings(tmp_path, database, persistent_redis.url, auto_migrate=False, **shared)
    )
    try:
        reader = await sign_up(reading)
        account_id = await reader.new_account()
        await write_state(writing, account_id, total_syncs=1)
        cached = await _total_syncs(reader, account_id)

        persistent_redis.kill()
        await write_state(writing, account_id, total_syncs=2)
        await stop_api(writing, writing_lifespan)
        await persistent_redis.start()
        after_restart = await _reads_for_a_second(reader, account_id)
    finally:
        await stop_api(reading, reading_lifespan)

    assert cached == 1
    assert after_restart == [2] * 10


@pytest.fixture
async def cut_off_writer(tmp_path):
    """Two processes of one host: one reaches the shared Redis, the other has lost its connection."""
    require_service("Redis", "127.0.0.1", 6379)
    namespace = f"tg:test:{uuid.uuid4().hex}:"
    reaching = fail_fast_redis(REDIS_URL, timeout_seconds=1)
    cut_off = fail_fast_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2)
    caches = [
        RedisCache(
            client, SharedEpochs(tmp_path / "epochs"), ttl_seconds=5, retry_seconds=1, namespace=namespace
        )
        for client in (reaching, cut_off)
    ]
    yield caches
    for client in (reaching, cut_off):
        await client.aclose()


async def test_a_write_whose_invalidation_was_lost_is_not_undone_by_an_entry_from_before(cut_off_writer):
    reader, writer = cut_off_writer
    await reader.put("a:1", "status", b"old", await reader.get("a:1", "status"))

    await writer.invalidate(["a:1"])
    after = await reader.get("a:1", "status")

    assert after.value is None


async def test_a_fill_looked_up_before_a_lost_invalidation_stores_nothing(cut_off_writer):
    reader, writer = cut_off_writer
    slow_reader = await reader.get("a:2", "status")

    await writer.invalidate(["a:2"])
    stored = await reader.put("a:2", "status", b"built before the write", slow_reader)
    after = await reader.get("a:2", "status")

    assert stored is False
    assert after.value is None
