"""The live stream over a real socket: events as they happen, resumption, other processes, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.apps import make_settings, serve_live, two_api_processes
from tests.support.bridging import position, register_follower, snapshot
from tests.support.builders import sign_up
from tests.support.services import REDIS_URL, require_service
from tests.support.streams import open_stream
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from tradeguard.auth.tokens import Principal
from tradeguard.bridges.client import BridgeClient
from tradeguard.stream.bus import SUBSCRIBER_QUEUE_LIMIT, MemoryBus, RedisBus, StreamEvent, Subscription
from tradeguard.stream.replay import stream_start


@pytest.fixture
async def live(tmp_path):
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}")
    async with serve_live(settings) as server:
        yield server


async def test_a_subscriber_sees_hello_state_and_each_sync_with_its_log_entries(live):
    follower = await register_follower(live.api)
    await follower.expect("T1")

    async with open_stream(live.api.http, follower.owner.token) as stream:
        hello = await stream.next("hello")
        initial = await stream.next("sync")
        await follower.bridge.send_snapshot(snapshot(position(1), position(2, symbol="GBPUSD")))
        matched = await stream.next("log", matching=lambda event: event.data["event_type"] == "matched")
        divergence = await stream.next("log", matching=lambda event: event.data["event_type"] == "divergence")
        synced = await stream.next("sync")

    assert hello.data["accounts"] == [follower.account_id]
    assert initial.data["total_syncs"] == 0
    assert matched.data["trade_id"] == "T1"
    assert divergence.data["reason"] == "unexpected_on_broker"
    assert divergence.event_id > matched.event_id
    assert (synced.data["total_syncs"], synced.data["status"]) == (1, "warning")


async def test_alerts_and_guard_changes_arrive_live(live):
    follower = await register_follower(live.api)
    await follower.bridge.send_snapshot(snapshot(position(1), equity="10000"))

    async with open_stream(live.api.http, follower.owner.token) as stream:
        await stream.next("hello")
        await follower.bridge.send_snapshot(snapshot(position(1), equity="7900"))
        alert = await stream.next("alert", matching=lambda event: event.data["kind"] == "drawdown")
        command = await stream.next("log", matching=lambda event: event.data["event_type"] == "close_command")
        synced = await stream.next("sync", matching=lambda event: event.data["total_syncs"] == 2)

    assert alert.data["level"] == "critical"
    assert command.data["ticket"] == "1"
    assert (synced.data["drawdown_level"], synced.data["trading_allowed"]) == ("critical", False)


async def listening(bus, subscription: Subscription, account_id: int) -> None:
    """Returns once the subscription receives what is published (Redis subscribes in the background)."""
    for _ in range(50):
        await bus.publish([StreamEvent("probe", account_id, b"{}")])
        with contextlib.suppress(TimeoutError):
            while (await asyncio.wait_for(subscription.queue.get(), timeout=0.2)).kind != "probe":
                pass
            return
    raise AssertionError("the subscription never received what was published")


async def next_alerts(subscription: Subscription, count: int) -> list[StreamEvent]:
    alerts = []
    while len(alerts) < count:
        event = await asyncio.wait_for(subscription.queue.get(), timeout=10)
        if event.kind == "alert":
            alerts.append(event)
    return alerts


def as_listed_in_alerts(told: dict) -> dict:
    """A streamed alert as /alerts lists it: under its alert_id instead of its audit entry's id."""
    listed = {name: value for name, value in told.items() if name != "alert_id"}
    return {**listed, "id": told["alert_id"]}


async def test_a_streamed_alert_is_the_alert_of_alerts_with_its_id_live_and_replayed(api):
    follower = await register_follower(api)
    await follower.bridge.send_snapshot(snapshot(position(1), equity="10000"))
    subscription = api.services.bus.subscribe([follower.account_id])
    try:
        await listening(api.services.bus, subscription, follower.account_id)
        await follower.bridge.send_snapshot(snapshot(position(1), equity="7900"))
        live = await next_alerts(subscription, 2)
    finally:
        subscription.close()
    owner = Principal(follower.owner.user_id, follower.owner.role)
    replayed = [
        event
        for event in await stream_start(api.services.sessions, owner, [follower.account_id], last_event_id=0)
        if event.kind == "alert"
    ]
    listed = (await follower.owner.get("/api/v1/alerts", account_id=follower.account_id)).json()["alerts"]

    for events in (live, replayed):
        told = [orjson.loads(event.data) for event in events]
        assert [event.event_id for event in events] == [alert["id"] for alert in told]
        newest_first = sorted(told, key=lambda alert: alert["alert_id"], reverse=True)
        assert [as_listed_in_alerts(alert) for alert in newest_first] == listed
    assert [alert["kind"] for alert in listed] == ["halt", "drawdown"]


async def test_a_reconnecting_client_gets_what_it_missed_after_its_last_event_id(live):
    follower = await register_follower(live.api)
    await follower.expect("T1")
    async with open_stream(live.api.http, follower.owner.token) as stream:
        await follower.bridge.send_snapshot(snapshot(position(1)))
        last_seen = await stream.next("log", matching=lambda event: event.data["event_type"] == "matched")

    await follower.bridge.send_snapshot(snapshot(position(1), position(2, symbol="USDJPY")))
    await follower.bridge.send_snapshot(snapshot(position(1)))

    async with open_stream(
        live.api.http, follower.owner.token, **{"Last-Event-ID": str(last_seen.event_id)}
    ) as stream:
        await stream.next("hello")
        missed = [await stream.next("log"), await stream.next("log")]

    assert [event.data["event_type"] for event in missed] == ["divergence", "closed_on_broker"]
    assert all(event.event_id > last_seen.event_id for event in missed)


async def test_a_user_streams_only_accounts_they_may_see(live):
    follower = await register_follower(live.api)
    stranger = await sign_up(live.api)

    refused = await live.api.http.get(
        "/api/v1/stream", params={"account_id": follower.account_id}, headers=stranger.headers
    )
    anonymous = await live.api.http.get("/api/v1/stream")

    assert refused.status_code == 404
    assert anonymous.status_code == 401
    async with open_stream(live.api.http, stranger.token) as stream:
        hello = await stream.next("hello")
    assert hello.data["accounts"] == []


async def test_events_travel_between_api_processes_through_redis(tmp_path):
    async with two_api_processes(tmp_path) as (watching, ingesting):
        follower = await register_follower(watching.api)
        bridge_to_other_process = BridgeClient(
            ingesting.api.http, device_id=follower.device_id, secret=follower.secret
        )
        async with open_stream(watching.api.http, follower.owner.token) as stream:
            await stream.next("hello")
            await bridge_to_other_process.send_snapshot(snapshot(position(1)))
            synced = await stream.next("sync", matching=lambda event: event.data["total_syncs"] == 1)

    assert synced.data["account_id"] == follower.account_id


async def test_a_subscriber_that_never_reads_is_cut_off_and_never_blocks_publishing():
    bus = MemoryBus()
    stalled = bus.subscribe([7])
    reading = bus.subscribe([7])
    events = [StreamEvent("log", 7, b"{}", event_id) for event_id in range(SUBSCRIBER_QUEUE_LIMIT + 50)]

    await bus.publish(events[:SUBSCRIBER_QUEUE_LIMIT])
    drained = [reading.queue.get_nowait() for _ in range(SUBSCRIBER_QUEUE_LIMIT)]
    await bus.publish(events[SUBSCRIBER_QUEUE_LIMIT:])

    assert stalled.overflowed is True
    assert stalled.queue.qsize() == SUBSCRIBER_QUEUE_LIMIT
    assert reading.overflowed is False
    assert len(drained) + reading.queue.qsize() == len(events)


async def test_deployments_sharing_a_redis_server_never_see_each_others_account_events():
    require_service("Redis", "127.0.0.1", int(REDIS_URL.split(":")[2].split("/")[0]))
    run = uuid.uuid4().hex[:8]
    clients = [aioredis.Redis.from_url(REDIS_URL) for _ in range(3)]
    ours, ours_elsewhere, theirs = (
        RedisBus(client, REDIS_URL, f"tg:{run}:{deployment}:")
        for client, deployment in zip(clients, "aab", strict=True)
    )
    mine, others = ours_elsewhere.subscribe([7]), theirs.subscribe([7])
    mine_heard: list[str] = []
    others_heard: list[str] = []
    try:
        await published_until_heard(ours, mine, "warming a", mine_heard)
        await published_until_heard(theirs, others, "warming b", others_heard)

        await published_until_heard(ours, mine, "ours", mine_heard)
        await published_until_heard(theirs, others, "theirs", others_heard)
    finally:
        for bus, client in zip((ours, ours_elsewhere, theirs), clients, strict=True):
            await bus.close()
            await client.aclose()

    # Both listeners were subscribed before "ours" was published, and "theirs" after it: had the
    # channels been shared, the other deployment would have heard "ours" first.
    assert "ours" not in others_heard
    assert "warming a" not in others_heard
    assert "warming b" not in mine_heard


async def test_the_events_of_one_write_reach_each_accounts_subscribers_whole_and_in_order():
    require_service("Redis", "127.0.0.1", int(REDIS_URL.split(":")[2].split("/")[0]))
    namespace = f"tg:{uuid.uuid4().hex[:8]}:"
    clients = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]
    writer, listener = (RedisBus(client, REDIS_URL, namespace) for client in clients)
    sevens, eights = listener.subscribe([7]), listener.subscribe([8])
    try:
        await published_until_heard(writer, sevens, "warming", [])
        one_write = [
            StreamEvent("log", 7, b'{"message":"line one\\nline two"}', 41),
            StreamEvent("alert", 8, '{"message":"drawdown 25 % \u2014 halted"}'.encode(), 42),
            StreamEvent("log", 7, b"{}", 43),
            StreamEvent("sync", 7, b'{"total_syncs":2}', None),
        ]
        await writer.publish(one_write)
        async with asyncio.timeout(5):
            heard_by_7 = await heard_after_warming(sevens, 3)
            heard_by_8 = await heard_after_warming(eights, 1)
    finally:
        for bus, client in zip((writer, listener), clients, strict=True):
            await bus.close()
            await client.aclose()

    assert heard_by_7 == [one_write[0], one_write[2], one_write[3]]
    assert heard_by_8 == [one_write[1]]


async def test_a_stream_whose_process_lost_redis_ends_once_the_listener_is_back_so_that_it_resumes():
    require_service("Redis", "127.0.0.1", int(REDIS_URL.split(":")[2].split("/")[0]))
    redis_host, redis_port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    proxy = TcpProxy(redis_host, int(redis_port))
    await proxy.start()
    namespace = f"tg:{uuid.uuid4().hex[:8]}:"
    clients = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]
    elsewhere = RedisBus(clients[0], REDIS_URL, namespace)
    # Only this process's listener goes through the link that breaks.
    here = RedisBus(clients[1], f"redis://127.0.0.1:{proxy.port}/{REDIS_URL.rsplit('/', 1)[1]}", namespace)
    try:
        stream = here.subscribe([7])
        await published_until_heard(elsewhere, stream, "before the loss", [])

        await proxy.cut()
        await elsewhere.publish([StreamEvent("log", 7, b"{}", 41)])
        await proxy.start()

        await eventually(lambda: stream.ended, "the stream ended, so that its client resumes from the log")
        resumed = here.subscribe([7])
        await published_until_heard(elsewhere, resumed, "after the loss", [])
        assert not resumed.ended
    finally:
        for bus, client in zip((elsewhere, here), clients, strict=True):
            await bus.close()
            await client.aclose()
        await proxy.cut()


async def heard_after_warming(subscription: Subscription, count: int) -> list[StreamEvent]:
    heard: list[StreamEvent] = []
    while len(heard) < count:
        event = await subscription.queue.get()
        if event.kind != "warming":
            heard.append(event)
    return heard


async def published_until_heard(
    bus: RedisBus, subscription: Subscription, kind: str, heard: list[str]
) -> None:
    """Publish an event of `kind` for account 7 until `subscription` hears one (its listener may still
    be subscribing), noting in `heard` everything it hears meanwhile."""
    while kind not in heard:
        await bus.publish([StreamEvent(kind, 7, b"{}", None)])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                while kind not in heard:
                    heard.append((await subscription.queue.get()).kind)
