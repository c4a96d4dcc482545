"""A process's own copies of the shared cache's entries: a hit without a round trip to Redis.

A copy is served only while its scope's host-shared epoch (`epochs`) still holds the value read
before the copy was fetched or built, and while it is younger than the time to live. Writers
invalidate Redis first and bump the shared epochs second, both before acknowledging, so no
process on the host serves a copy older than an acknowledged write.

Writes on other hosts arrive as announcements on a Redis channel, and each process bumps the
epochs they name. Copies are kept and served only while this process is subscribed to that
channel: when the subscription is lost, every copy is dropped until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import replace

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradeguard.cache.base import CacheLookup, Peek, WarmFields, refresh_due_at
from tradeguard.cache.epochs import SharedEpochs
from tradeguard.cache.redis import EVERY_SCOPE, RedisCache, decode_announcement

log = logging.getLogger(__name__)


class NearCache:
    def __init__(
        self,
        shared: RedisCache,
        epochs: SharedEpochs,
        *,
        ttl_seconds: float,
        max_entries: int,
        wall_clock=time.time,
    ) -> None:
        self.backend = shared.backend
        self.shared = shared
        self._epochs = epochs
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._wall_clock = wall_clock
        self._copies: dict[str, dict[str, tuple[int, float, float, bytes]]] = {}
        self._count = 0
        self.following = False
        """Whether announcements from other hosts reach this process; copies are kept only then."""

    def peek(self, scope: str, field: str) -> Peek | None:
        fields = self._copies.get(scope)
        if fields is None:
            return None
        copy = fields.get(field)
        if copy is None:
            return None
        stamp, built_at, refresh_at, value = copy
        now = self._wall_clock()
        if stamp != self._epochs.current(scope) or now - built_at > self._ttl:
            del fields[field]
            self._count -= 1
            return None
        return Peek(value, built_at, refresh_due=now > refresh_at)

    async def get(self, scope: str, field: str) -> CacheLookup:
        stamp = self._epochs.current(scope)
        lookup = await self.shared.get(scope, field)
        if lookup.value is not None:
            self._keep(scope, field, stamp, lookup.built_at, lookup.value)
        return replace(lookup, stamp=stamp)

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> bool:
        stored = await self.shared.put(scope, field, value, lookup)
        if stored and lookup.stamp is not None:
            self._keep(scope, field, lookup.stamp, self._wall_clock(), value)
        return stored

    async def invalidate(self, scopes: Iterable[str]) -> WarmFields:
        scopes = list(scopes)
        warm = await self.shared.invalidate(scopes, origin=self._epochs.host_token)
        self._epochs.bump(scopes)
        self._drop(scopes)
        return warm

    async def healthy(self) -> bool:
        return await self.shared.healthy()

    async def follow_other_hosts(self, redis_url: str, *, retry_seconds: float = 1.0) -> None:
        """Apply other hosts' invalidations to this host's epochs, for as long as the process runs."""
        channel = self.shared.announce_channel
        # Listening blocks on the socket between messages: no fail-fast read timeout here.
        client = Redis.from_url(redis_url, health_check_interval=30)
        try:
            while True:
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(channel)
                        async for message in pubsub.listen():
                            if message["type"] == "message":
                                self._apply(message["data"])
                            elif message["type"] == "subscribe":
                                # Only from Redis's confirmation on is no announcement missed.
                                self.following = True
                except (RedisError, OSError) as exc:
                    log.warning("cache invalidations from other hosts lost (%s); retrying", exc)
                finally:
                    self.following = False
                    self._drop_all()
                await asyncio.sleep(retry_seconds)
        finally:
            await client.aclose()

    def _apply(self, announcement: bytes) -> None:
        origin, scopes = decode_announcement(announcement)
        if EVERY_SCOPE in scopes:
            self._drop_all()
            return
        if origin != self._epochs.host_token:
            self._epochs.bump(scopes)
            self._drop(scopes)

    def _keep(self, scope: str, field: str, stamp: int, built_at: float | None, value: bytes) -> None:
        if not self.following or built_at is None:
            return
        fields = self._copies.get(scope)
        if fields is None or field not in fields:
            if self._count >= self._max_entries:
                self._evict_oldest_scope()
            self._count += 1
            fields = self._copies.setdefault(scope, {})
        fields[field] = (stamp, built_at, refresh_due_at(built_at, self._ttl), value)

    def _evict_oldest_scope(self) -> None:
        oldest = next(iter(self._copies))
        self._count -= len(self._copies.pop(oldest))

    def _drop_all(self) -> None:
        self._copies.clear()
        self._count = 0

    def _drop(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            dropped = self._copies.pop(scope, None)
            if dropped:
                self._count -= len(dropped)
