"""A dashboard's live stream on a host whose link to Redis breaks and comes back: what another host
applied meanwhile is not silently missing from it. Either the stream brings it, or it ends, so
that the dashboard reconnects with Last-Event-ID and gets it from the audit log."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.support.bridging import position, snapshot
from tests.support.hosts import api_hosts
from tests.support.streams import EventReader, Received, open_stream
from tradeguard.bridges.client import BridgeClient

GUARD_SECONDS = 30


@pytest.fixture(scope="module")
async def hosts(tmp_path_factory):
    async with api_hosts(
        tmp_path_factory.mktemp("hosts"),
        {"a": {}, "b": {}},
        # Other runs share this PostgreSQL and its connection limit.
        shared={"TRADEGUARD_DB_POOL_SIZE": "3", "TRADEGUARD_DB_MAX_OVERFLOW": "2"},
        worker_on="a",
    ) as deployment:
        yield deployment


async def _keep_sending(bridge: BridgeClient) -> None:
    while True:
        await bridge.send_snapshot(snapshot(equity="7800"))
        await asyncio.sleep(0.2)


async def _until(stream: EventReader, done) -> tuple[list[Received], bool]:
    """The events up to the first that `done` accepts, and whether the stream ended before it."""
    seen: list[Received] = []
    while not stream.ended:
        with contextlib.suppress(TimeoutError):
            seen.append(await asyncio.wait_for(stream.events.get(), 0.5))
            if done(seen[-1]):
                return seen, False
    return seen, True


async def test_a_stream_on_a_host_that_lost_redis_does_not_silently_miss_another_hosts_alert(hosts):
    owner = await hosts.sign_up("a")
    account_id = await owner.new_account()
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    on_a = BridgeClient(hosts["a"].http, device_id=device["device_id"], secret=device["secret"])
    await on_a.send_snapshot(snapshot(position(1), equity="10000"))

    async with open_stream(hosts["b"].http, owner.token) as from_b:
        await from_b.next("hello")
        await on_a.send_snapshot(snapshot(position(1), equity="10000"))
        # Host b's listener follows Redis: it has host a's events.
        await from_b.next("sync", matching=lambda event: event.data["total_syncs"] == 2)

        await hosts["b"].to_redis.cut()
        breach = await on_a.send_snapshot(snapshot(position(1), equity="7900"))
        await hosts["b"].to_redis.start()
        # Host a goes on applying snapshots until host b's stream shows one of them (its listener
        # is back) or ends.
        sending = asyncio.create_task(_keep_sending(on_a))
        try:
            seen, ended = await asyncio.wait_for(
                _until(from_b, lambda event: event.kind == "sync" and event.data["total_syncs"] > 3),
                GUARD_SECONDS,
            )
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending

    assert [command["ticket"] for command in breach["commands"]] == ["1"]
    alerts = [event for event in seen if event.kind == "alert" and event.data["kind"] == "drawdown"]
    assert ended or alerts, (
        f"host b's stream went on without host a's drawdown alert: {[e.kind for e in seen]}"
    )
