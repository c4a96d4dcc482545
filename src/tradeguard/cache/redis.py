"""The shared cache for several API processes: one Redis hash per scope, one round trip per read.

Redis failing never fails a request. The first failure is logged once and Redis is skipped for
`retry_seconds`; reads go to the database meanwhile.

An invalidation that does not reach Redis (Redis down, stalled, or this process's connection
lost) leaves Redis holding entries older than its write, while the write is acknowledged anyway.
So before acknowledging, the writer marks the host (`SharedEpochs.mark_undelivered`), and while
the mark stands no process of the host reads or fills Redis. The first process to reach Redis
again advances the cache's generation there, in one step that every later read and fill checks:
each entry carries the generation it was stored under and is a miss under any other, and a fill
whose lookup saw an earlier generation stores nothing. Only then is the mark cleared, unless
another invalidation failed meanwhile. Whichever process wrote during the outage, even one that
has exited since, no entry from before it is served afterwards; the price is one rebuild of every
entry after each outage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradeguard.cache.base import CacheLookup, Peek, WarmFields
from tradeguard.cache.epochs import SharedEpochs
from tradeguard.metrics import CACHE_ERRORS

log = logging.getLogger(__name__)

_EPOCH_FIELD = "~epoch"
_GENERATION_KEY = "~generation"
# The epoch must outlive any read that started before an invalidation; entries themselves age out by ttl.
_SCOPE_LIFETIME_SECONDS = 3600
EVERY_SCOPE = "*"

_GET = """
local found = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[2])
return {redis.call('GET', KEYS[2]) or '0', found[1], found[2]}
"""

_PUT_IF_UNCHANGED = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
if (redis.call('HGET', KEYS[1], ARGV[2]) or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6], 'NX')
return 1
"""


class RedisCache:
    backend = "redis"

    def __init__(
        self,
        client: Redis,
        host: SharedEpochs,
        *,
        ttl_seconds: float,
        retry_seconds: float,
        namespace: str = "tg:c:",
        announce_channel: str | None = None,
        clock=time.monotonic,
        wall_clock=time.time,
    ) -> None:
        self._client = client
        self._host = host
        self._get_script = self._client.register_script(_GET)
        self._put_script = self._client.register_script(_PUT_IF_UNCHANGED)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._retry_seconds = retry_seconds
        self._namespace = namespace
        self._generation_key = namespace + _GENERATION_KEY
        self._announce_channel = announce_channel
        self._clock = clock
        self._wall_clock = wall_clock
        self._down_until: float | None = None
        self._settling = False

    def _key(self, scope: str) -> str:
        return self._namespace + scope

    @property
    def announce_channel(self) -> str | None:
        return self._announce_channel

    def peek(self, scope: str, field: str) -> Peek | None:
        return None

    async def get(self, scope: str, field: str) -> CacheLookup:
        if not await self._usable():
            return CacheLookup(None, None)
        try:
            generation, epoch, stored = await self._get_script(
                keys=[self._key(scope), self._generation_key], args=[_EPOCH_FIELD, field]
            )
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return CacheLookup(None, None)
        self._came_back()
        # The generation is part of the lookup's epoch: a lookup from before an outage then matches
        # neither a fill nor a shared build after it.
        version = f"{generation.decode()}/{epoch.decode() if epoch is not None else ''}"
        if stored is None:
            return CacheLookup(None, version)
        stored_generation, _, stamped = stored.partition(b"|")
        if stored_generation != generation:
            return CacheLookup(None, version)
        stamp, _, payload = stamped.partition(b"|")
        built_at = int(stamp) / 1000
        if self._wall_clock() - built_at > self._ttl_ms / 1000:
            return CacheLookup(None, version)
        return CacheLookup(payload, version, built_at)

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> bool:
        if lookup.epoch is None or not await self._usable():
            return False
        generation, _, epoch = lookup.epoch.partition("/")
        stamped = b"%s|%d|" % (generation.encode(), int(self._wall_clock() * 1000)) + value
        try:
            stored = await self._put_script(
                keys=[self._key(scope), self._generation_key],
                args=[generation, _EPOCH_FIELD, epoch, field, stamped, _SCOPE_LIFETIME_SECONDS],
            )
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return False
        return bool(stored)

    async def invalidate(self, scopes: Iterable[str], *, origin: int = 0) -> WarmFields:
        """Drop the scopes and, with an announce channel, tell every process which (`origin` says whose).

        If that cannot be done, the host is marked before returning, that is before the write is
        acknowledged.
        """
        scopes = list(scopes)
        if not scopes:
            return {}
        if not self._backing_off():
            try:
                warm = await self._send_invalidations(scopes, origin)
            except (RedisError, OSError) as exc:
                self._went_down(exc)
            else:
                self._came_back()
                return warm
        self._host.mark_undelivered()
        return {}

    async def healthy(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def _send_invalidations(self, scopes: list[str], origin: int) -> WarmFields:
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

    async def _usable(self) -> bool:
        """Whether Redis may be read and filled now: reachable as far as this process knows, and
        holding nothing older than an acknowledged write of this host."""
        if self._backing_off():
            return False
        mark = self._host.undelivered()
        return mark == 0 or await self._settle(mark)

    async def _settle(self, mark: int) -> bool:
        if self._settling:
            # This process's other readers go to the database until the one settling is done.
            return False
        self._settling = True
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(self._generation_key)
                if self._announce_channel is not None:
                    # Other hosts' copies may be older than this host's writes too.
                    pipe.publish(self._announce_channel, encode_announcement(0, [EVERY_SCOPE]))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return False
        finally:
            self._settling = False
        settled = self._host.settle(mark)
        if settled:
            log.warning("redis cache reachable again; every entry stored before is discarded")
        self._came_back()
        return settled

    def _backing_off(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    def _came_back(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.warning("redis cache reachable again; serving from the cache")

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
