"""Publish account events without ever waiting for a subscriber; subscribe to a set of accounts.

In-process, events go straight to each subscriber's bounded queue. With Redis, every process
publishes to a channel per account and one listener per process fans the messages out locally, so
a subscriber on any API process sees every account event. A subscriber that falls behind is cut
off (its queue is bounded) and resumes from the audit log with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class StreamEvent:
    kind: str
    account_id: int
    data: bytes
    """The event's JSON, serialized once for every subscriber."""
    event_id: int | None = None


_END = StreamEvent(kind="end", account_id=0, data=b"")
"""Never sent: wakes the reader of a subscription that has ended."""


class Subscription:
    """`account_ids` None: every account's events, the operator's platform-wide stream."""

    def __init__(self, bus: LocalFanout, account_ids: frozenset[int] | None) -> None:
        self.account_ids = account_ids
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_LIMIT)
        self.overflowed = False
        self.ended = False
        self._bus = bus

    def offer(self, event: StreamEvent) -> None:
        if self.overflowed or self.ended:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    def end(self) -> None:
        """No more events: the reader waiting on the queue wakes up and its stream finishes."""
        self.ended = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(_END)

    def close(self) -> None:
        self._bus.remove(self)


class LocalFanout:
    """Subscribers of this process, by account, and those of every account."""

    def __init__(self) -> None:
        self._by_account: dict[int, set[Subscription]] = defaultdict(set)
        self._of_every_account: set[Subscription] = set()
        self._open: set[Subscription] = set()
        self._ending = False

    def subscribe(self, account_ids: Iterable[int] | None) -> Subscription:
        subscription = Subscription(self, None if account_ids is None else frozenset(account_ids))
        if self._ending:
            subscription.end()
            return subscription
        self._open.add(subscription)
        if subscription.account_ids is None:
            self._of_every_account.add(subscription)
        for account_id in subscription.account_ids or ():
            self._by_account[account_id].add(subscription)
        return subscription

    def end_all(self) -> None:
        """End every subscription, and any made from now on: the process is stopping."""
        self._ending = True
        for subscription in self._open:
            subscription.end()

    def cut_off(self) -> None:
        """End every open subscription, leaving new ones welcome: their readers resume from the audit log."""
        for subscription in tuple(self._open):
            subscription.end()

    def remove(self, subscription: Subscription) -> None:
        self._open.discard(subscription)
        self._of_every_account.discard(subscription)
        for account_id in subscription.account_ids or ():
            subscribers = self._by_account.get(account_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_account[account_id]

    def deliver(self, event: StreamEvent) -> None:
        for subscription in tuple(self._by_account.get(event.account_id, ())):
            subscription.offer(event)
        for subscription in tuple(self._of_every_account):
            subscription.offer(event)


class EventBus(Protocol):
    backend: str

    async def publish(self, events: Iterable[StreamEvent]) -> None: ...

    def subscribe(self, account_ids: Iterable[int] | None) -> Subscription: ...

    def end_streams(self) -> None:
        """End this process's subscriptions now, so open streams do not hold a stopping server open."""

    async def close(self) -> None: ...


class MemoryBus:
    backend = "memory"

    def __init__(self) -> None:
        self.local = LocalFanout()

    async def publish(self, events: Iterable[StreamEvent]) -> None:
        for event in events:
            self.local.deliver(event)

    def subscribe(self, account_ids: Iterable[int] | None) -> Subscription:
        return self.local.subscribe(account_ids)

    def end_streams(self) -> None:
        self.local.end_all()

    async def close(self) -> None:
        self.end_streams()


def _encode(events: list[StreamEvent]) -> bytes:
    """One message for a write's events: a JSON line of [kind, account id, event id, data length]
    per event, then their data back to back."""
    header = [[event.kind, event.account_id, event.event_id, len(event.data)] for event in events]
    return orjson.dumps(header) + b"\n" + b"".join(event.data for event in events)


def _decode(message: bytes) -> list[StreamEvent]:
    header, _, data = message.partition(b"\n")
    events, offset = [], 0
    for kind, account_id, event_id, length in orjson.loads(header):
        events.append(StreamEvent(kind, account_id, data[offset : offset + length], event_id))
        offset += length
    return events


class RedisBus:
    backend = "redis"

    def __init__(self, client: Redis, url: str, namespace: str) -> None:
        self._client = client
        # Under the deployment's namespace, as its cache keys are: two deployments sharing one Redis
        # server never see each other's account events. One channel: every process listens to every
        # account, and a write's events go out as one message.
        self._channel = f"{namespace}ev"
        # Subscribing blocks on the socket between messages, so the listener needs a client
        # without the fail-fast read timeout of the publishing one.
        self._listener_client = Redis.from_url(url, health_check_interval=30)
        self.local = LocalFanout()
        self._listener: asyncio.Task | None = None
        self._failing = False
        self._resubscribing = False
        """Whether the listener's next subscription follows a lost link (or a first attempt that failed)."""

    async def publish(self, events: Iterable[StreamEvent]) -> None:
        events = list(events)
        if not events:
            return
        try:
            await self._client.publish(self._channel, _encode(events))
            self._failing = False
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning(
                    "redis unreachable for the live stream (%s); delivering in this process only", exc
                )
                self._failing = True
            for event in events:
                self.local.deliver(event)

    def subscribe(self, account_ids: Iterable[int] | None) -> Subscription:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        return self.local.subscribe(account_ids)

    def end_streams(self) -> None:
        self.local.end_all()

    async def _listen(self) -> None:
        while True:
            try:
                async with self._listener_client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            for event in _decode(message["data"]):
                                self.local.deliver(event)
                        elif message["type"] == "subscribe":
                            self._subscribed()
            except (RedisError, OSError) as exc:
                log.warning("live stream listener lost redis (%s); retrying", exc)
                self._resubscribing = True
                await asyncio.sleep(1)

    def _subscribed(self) -> None:
        # A subscription after the first one follows a lost link (redis-py re-subscribes by itself
        # on reconnecting, or the loop above did): what other processes published meanwhile never
        # reached this process's streams, so they end, and their clients resume from the audit log
        # with Last-Event-ID.
        if self._resubscribing:
            log.warning("live stream listener back on redis; open streams end so that they resume")
            self.local.cut_off()
        self._resubscribing = True

    async def close(self) -> None:
        self.end_streams()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._listener_client.aclose()
