"""The shared cache for several API processes: one Redis hash per scope, one round trip per read.

Redis failing never fails a request. The first failure is logged once and Redis is skipped for
`retry_seconds`; reads go to the database meanwhile. Invalidations that could not be sent are
kept and replayed before Redis is used again, so nothing stale survives an outage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradeguard.cache.base import CacheLookup, Peek, WarmFields
from tradeguard.metrics import CACHE_ERRORS

log = logging.getLogger(__name__)

_EPOCH_FIELD = "~epoch"
# The epoch must outlive any read that started before an invalidation; entries themselves age out by ttl.
_SCOPE_LIFETIME_SECONDS = 3600
_MAX_REMEMBERED_INVALIDATIONS = 100_000
EVERY_SCOPE = "*"

_PUT_IF_EPOCH_UNCHANGED = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5], 'NX')
return 1
"""


class RedisCache:
    backend = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        ttl_seconds: float,
        retry_seconds: float,
        namespace: str = "tg:c:",
        announce_channel: str | None = None,
        clock=time.monotonic,
        wall_clock=time.time,
    ) -> None:
        self._client = client
        self._put_script = self._client.register_script(_PUT_IF_EPOCH_UNCHANGED)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._retry_seconds = retry_seconds
        self._namespace = namespace
        self._announce_channel = announce_channel
        self._clock = clock
        self._wall_clock = wall_clock
        self._down_until: float | None = None
        self._unsent_invalidations: set[str] = set()
        self._unsent_overflowed = False

    def _key(self, scope: str) -> str:
        return self._namespace + scope

    @property
    def announce_channel(self) -> str | None:
        return self._announce_channel

    def peek(self, scope: str, field: str) -> Peek | None:
        return None

    async def get(self, scope: str, field: str) -> CacheLookup:
        if not await self._available():
            return CacheLookup(None, None)
        try:
            epoch, stored = await self._client.hmget(self._key(scope), [_EPOCH_FIELD, field])
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return CacheLookup(None, None)
        epoch_text = epoch.decode() if epoch is not None else ""
        if stored is None:
            return CacheLookup(None, epoch_text)
        stamp, _, payload = stored.partition(b"|")
        built_at = int(stamp) / 1000
        if self._wall_clock() - built_at > self._ttl_ms / 1000:
            return CacheLookup(None, epoch_text)
        return CacheLookup(payload, epoch_text, built_at)

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> bool:
        if lookup.epoch is None or not await self._available():
            return False
        stamped = b"%d|" % int(self._wall_clock() * 1000) + value
        try:
            stored = await self._put_script(
                keys=[self._key(scope)],
                args=[_EPOCH_FIELD, lookup.epoch, field, stamped, _SCOPE_LIFETIME_SECONDS],
            )
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return False
        return bool(stored)

    async def invalidate(self, scopes: Iterable[str], *, origin: int = 0) -> WarmFields:
        """Drop the scopes and, with an announce channel, tell every process which (`origin` says whose)."""
        scopes = list(scopes)
        if not await self._available():
            self._remember_unsent(scopes)
            return {}
        try:
            return await self._send_invalidations(scopes, origin)
        except (RedisError, OSError) as exc:
            self._remember_unsent(scopes)
            self._went_down(exc)
            return {}

    async def healthy(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def _send_invalidations(self, scopes: list[str], origin: int) -> WarmFields:
        if not scopes:
            return {}
        epoch = uuid.uuid4().hex
        async with self._client.pipeline(transaction=True) as pipe:
            for scope in scopes:
                key = self._key(scope)
                pipe.hkeys(key)
                pipe.delete(key)
                pipe.hset(key, _EPOCH_FIELD, epoch)
                pipe.expire(key, _SCOPE_LIFETIME_SECONDS)
            if self._announce_channel is not None:
                pipe.publish(self._announce_channel, encode_announcement(origin, scopes))
            replies = await pipe.execute()
        warm: WarmFields = {}
        for index, scope in enumerate(scopes):
            fields = [name.decode() for name in replies[4 * index] if name != _EPOCH_FIELD.encode()]
            if fields:
                warm[scope] = fields
        return warm

    async def _available(self) -> bool:
        if self._down_until is None:
            return True
        if self._clock() < self._down_until:
            return False
        try:
            await self._replay_unsent()
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return False
        self._down_until = None
        log.warning("redis cache reachable again; serving from the cache")
        return True

    async def _replay_unsent(self) -> None:
        await self._client.ping()
        if self._unsent_overflowed:
            # Too many writes during the outage to remember one by one: drop the whole namespace.
            async for key in self._client.scan_iter(match=self._namespace + "*", count=1000):
                await self._client.delete(key)
            if self._announce_channel is not None:
                await self._client.publish(self._announce_channel, encode_announcement(0, [EVERY_SCOPE]))
            self._unsent_overflowed = False
        else:
            await self._send_invalidations(sorted(self._unsent_invalidations), origin=0)
        self._unsent_invalidations.clear()

    def _remember_unsent(self, scopes: list[str]) -> None:
        if self._unsent_overflowed:
            return
        self._unsent_invalidations.update(scopes)
        if len(self._unsent_invalidations) > _MAX_REMEMBERED_INVALIDATIONS:
            self._unsent_invalidations.clear()
            self._unsent_overflowed = True

    def _went_down(self, exc: BaseException) -> None:
        CACHE_ERRORS.inc()
        if self._down_until is None:
            log.warning("redis cache unreachable (%s); reads fall back to the database", exc)
        self._down_until = self._clock() + self._retry_seconds


def encode_announcement(origin: int, scopes: list[str]) -> bytes:
    return f"{origin}|{' '.join(scopes)}".encode()


def decode_announcement(message: bytes) -> tuple[int, list[str]]:
    origin, _, scopes = message.decode().partition("|")
    return int(origin), scopes.split()
