"""Each process's own copies of cache hits: never older than an acknowledged write, on this host or another."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

import pytest

from tests.support.apps import two_api_processes
from tests.support.bridging import position, register_follower, snapshot
from tests.support.services import REDIS_URL, require_service
from tradeguard.bridges.client import BridgeClient
from tradeguard.cache import MemoryCache, NearCache, ReadThrough, RedisCache
from tradeguard.cache.epochs import SharedEpochs
from tradeguard.redis_client import fail_fast_redis

STATUS = "/api/v1/reconciliation/status"
POSITIONS = "/api/v1/positions/open"


class WallClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Host:
    """The epochs file that the processes of one machine share."""

    def __init__(self, path) -> None:
        self.path = path

    def epochs(self) -> SharedEpochs:
        return SharedEpochs(self.path)


@pytest.fixture
def namespace() -> str:
    return f"tg:near-test:{os.getpid()}:{uuid.uuid4().hex}:"


@pytest.fixture
async def process_on(namespace, tmp_path):
    """Builds one process's NearCache on a given host, following announcements like a served app."""
    require_service("Redis", "127.0.0.1", 6379)
    clients, followers = [], []

    async def start(host: Host, clock=None) -> NearCache:
        client = fail_fast_redis(REDIS_URL, timeout_seconds=1)
        clients.append(client)
        extra = {"wall_clock": clock} if clock else {}
        epochs = host.epochs()
        shared = RedisCache(
            client,
            epochs,
            ttl_seconds=5,
            retry_seconds=1,
            namespace=namespace,
            announce_channel=f"{namespace}invalidated",
            **extra,
        )
        near = NearCache(shared, epochs, ttl_seconds=5, max_entries=100, **extra)
        followers.append(asyncio.create_task(near.follow_other_hosts(REDIS_URL)))
        while not near.following:
            await asyncio.sleep(0.01)
        return near

    yield start
    for task in followers:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for client in clients:
        await client.aclose()


async def fill(cache, scope: str, field: str, value: bytes) -> None:
    await cache.put(scope, field, value, await cache.get(scope, field))


async def test_epochs_written_by_one_process_are_read_by_another_on_the_same_host(tmp_path):
    writer, reader = SharedEpochs(tmp_path / "epochs"), SharedEpochs(tmp_path / "epochs")
    before = reader.current("a:1"), reader.current("a:2")

    writer.bump(["a:1"])

    assert reader.current("a:1") != before[0]
    assert reader.current("a:2") == before[1]
    assert writer.host_token == reader.host_token != 0


async def test_a_copy_is_served_from_memory_until_any_process_on_the_host_writes(process_on, tmp_path):
    host = Host(tmp_path / "epochs")
    reading, writing = await process_on(host), await process_on(host)
    await fill(reading, "a:1", "status", b"old")
    served_before = reading.peek("a:1", "status")

    await writing.invalidate(["a:1"])
    served_after = reading.peek("a:1", "status")
    from_redis = await reading.get("a:1", "status")

    assert served_before is not None and served_before.value == b"old"
    assert served_after is None
    assert from_redis.value is None


async def test_a_copy_fetched_from_redis_is_kept_and_dropped_like_one_built_here(process_on, tmp_path):
    host = Host(tmp_path / "epochs")
    filling, reading = await process_on(host), await process_on(host)
    await fill(filling, "a:7", "status", b"v1")

    assert reading.peek("a:7", "status") is None
    assert (await reading.get("a:7", "status")).value == b"v1"
    assert reading.peek("a:7", "status").value == b"v1"
    await filling.invalidate(["a:7"])
    assert reading.peek("a:7", "status") is None


async def test_a_write_on_another_host_reaches_this_hosts_copies_through_redis(process_on, tmp_path):
    here, elsewhere = Host(tmp_path / "here"), Host(tmp_path / "elsewhere")
    reading, writing = await process_on(here), await process_on(elsewhere)
    await fill(reading, "a:3", "status", b"old")
    assert reading.peek("a:3", "status") is not None

    await writing.invalidate(["a:3"])
    for _ in range(200):
        if reading.peek("a:3", "status") is None:
            break
        await asyncio.sleep(0.01)

    assert reading.peek("a:3", "status") is None
    assert (await reading.get("a:3", "status")).value is None


async def test_a_filler_that_looked_up_before_a_write_keeps_no_copy(process_on, tmp_path):
    host = Host(tmp_path / "epochs")
    reading, writing = await process_on(host), await process_on(host)
    slow_lookup = await reading.get("a:4", "status")

    await writing.invalidate(["a:4"])
    stored = await reading.put("a:4", "status", b"built before the write", slow_lookup)

    assert stored is False
    assert reading.peek("a:4", "status") is None


async def test_a_copy_is_due_for_refresh_late_in_its_life_and_gone_after_it(process_on, tmp_path):
    clock = WallClock()
    near = await process_on(Host(tmp_path / "epochs"), clock)
    await fill(near, "a:5", "status", b"v")

    young = near.peek("a:5", "status")
    clock.now += 4.6
    ageing = near.peek("a:5", "status")
    clock.now += 0.5
    expired = near.peek("a:5", "status")

    assert (young.value, young.refresh_due) == (b"v", False)
    assert (ageing.value, ageing.refresh_due) == (b"v", True)
    assert expired is None


async def test_no_copies_are_kept_while_other_hosts_cannot_be_heard(namespace, tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    client = fail_fast_redis(REDIS_URL, timeout_seconds=1)
    epochs = SharedEpochs(tmp_path / "epochs")
    shared = RedisCache(client, epochs, ttl_seconds=5, retry_seconds=1, namespace=namespace)
    deaf = NearCache(shared, epochs, ttl_seconds=5, max_entries=10)
    try:
        await fill(deaf, "a:6", "status", b"v")
        from_redis = await deaf.get("a:6", "status")
    finally:
        await client.aclose()

    assert from_redis.value == b"v"
    assert deaf.peek("a:6", "status") is None


async def test_concurrent_misses_share_one_build():
    cache = MemoryCache(ttl_seconds=5, max_entries=10)
    reads = ReadThrough(cache)
    builds = 0
    release = asyncio.Event()

    async def build() -> bytes:
        nonlocal builds
        builds += 1
        await release.wait()
        return b"built"

    readers = [asyncio.create_task(reads.read("a:1", "reconciliation_status", "f", build)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()

    assert await asyncio.gather(*readers) == [b"built"] * 5
    assert builds == 1


async def test_a_reader_after_a_write_does_not_join_a_build_that_started_before_it():
    cache = MemoryCache(ttl_seconds=5, max_entries=10)
    reads = ReadThrough(cache)
    release = asyncio.Event()
    state = {"value": b"before the write"}
    started = []

    async def build() -> bytes:
        seen = state["value"]
        started.append(seen)
        await release.wait()
        return seen

    early = asyncio.create_task(reads.read("a:1", "reconciliation_status", "f", build))
    while not started:
        await asyncio.sleep(0)
    state["value"] = b"after the write"
    await cache.invalidate(["a:1"])
    late = asyncio.create_task(reads.read("a:1", "reconciliation_status", "f", build))
    while len(started) < 2:
        await asyncio.sleep(0)
    release.set()

    assert await early == b"before the write"
    assert await late == b"after the write"
    assert (await cache.get("a:1", "f")).value == b"after the write"


async def test_a_reader_who_hangs_up_does_not_cancel_the_build_others_wait_for():
    reads = ReadThrough(MemoryCache(ttl_seconds=5, max_entries=10))
    release = asyncio.Event()

    async def build() -> bytes:
        await release.wait()
        return b"built"

    leaving = asyncio.create_task(reads.read("a:1", "reconciliation_status", "f", build))
    staying = asyncio.create_task(reads.read("a:1", "reconciliation_status", "f", build))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()

    assert await staying == b"built"
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_after_a_snapshot_the_views_its_owner_reads_are_rebuilt_and_the_next_read_hits(api):
    follower = await register_follower(api)
    owner = follower.owner
    await follower.bridge.send_snapshot(snapshot(position(1)))
    for path in (STATUS, POSITIONS):
        await owner.get(path, account_id=follower.account_id)

    await follower.bridge.send_snapshot(snapshot(position(1), position(2)))
    await api.services.reads.wait_for_rebuilds()
    status_entry = await api.services.cache.get(
        f"a:{follower.account_id}", f"reconciliation_status:{owner.user_id}?"
    )
    positions_entry = await api.services.cache.get(
        f"a:{follower.account_id}", f"open_positions:{owner.user_id}?"
    )
    never_read = await api.services.cache.get(f"a:{follower.account_id}", f"guard_status:{owner.user_id}?")
    status = (await owner.get(STATUS, account_id=follower.account_id)).json()

    assert status_entry.hit and positions_entry.hit
    assert never_read.hit is False
    assert status["total_syncs"] == 2
    assert b'"total_syncs":2' in status_entry.value


async def test_a_read_on_one_api_process_right_after_an_ingest_on_another_is_never_stale(tmp_path):
    async with two_api_processes(tmp_path) as (reading, ingesting):
        follower = await register_follower(reading.api)
        bridge = BridgeClient(ingesting.api.http, device_id=follower.device_id, secret=follower.secret)
        headers = follower.owner.headers
        seen = []
        for sync in range(1, 21):
            await bridge.send_snapshot(snapshot(*(position(ticket) for ticket in range(1, sync + 1))))
            answer = await reading.api.http.get(
                POSITIONS, params={"account_id": follower.account_id}, headers=headers
            )
            seen.append(answer.json()["total_positions"])
            for _ in range(3):
                await reading.api.http.get(
                    POSITIONS, params={"account_id": follower.account_id}, headers=headers
                )

    assert seen == list(range(1, 21))


async def test_a_rebuild_ahead_of_readers_takes_a_younger_entry_another_process_stored():
    clock = WallClock()
    cache = MemoryCache(ttl_seconds=5, max_entries=10, clock=clock)
    reads = ReadThrough(cache)
    builds = []

    async def build() -> bytes:
        builds.append(clock.now)
        return b"built %d" % len(builds)

    await reads.read("a:1", "guard_status", "f", build)
    first_built_at = clock.now
    clock.now += 4
    younger_elsewhere = await reads.read("a:1", "guard_status", "f", build, stale_before=first_built_at - 1)
    rebuilt = await reads.read("a:1", "guard_status", "f", build, stale_before=first_built_at)

    assert younger_elsewhere == b"built 1"
    assert rebuilt == b"built 2"
    assert (await cache.get("a:1", "f")).value == b"built 2"
