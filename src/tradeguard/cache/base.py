"""The cache interface and the epoch rule that keeps a slow reader from caching stale data.

A read that misses remembers the scope's epoch; every invalidation replaces the epoch; a filler
whose epoch is no longer current stores nothing. So a response built from the database before a
write can never be cached after that write's invalidation, and a read after an acknowledged
ingest never sees older data.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


def account_scope(account_id: int) -> str:
    return f"a:{account_id}"


def user_scope(user_id: int) -> str:
    return f"u:{user_id}"


PLATFORM_SCOPE = "p"
"""The views over every account: any account's write drops them."""


@dataclass(frozen=True, slots=True)
class CacheLookup:
    value: bytes | None
    epoch: str | None
    """The scope's epoch when looked up; pass it back to `put`. None when the cache is unavailable."""
    built_at: float | None = None
    """When a hit's value was stored, in the cache's own clock."""
    stamp: int | None = None
    """The host-shared epoch read before the lookup, for a process's own copy (see `near`)."""

    @property
    def hit(self) -> bool:
        return self.value is not None


_REFRESH_FROM, _REFRESH_UNTIL = 0.5, 0.9


def refresh_due_at(built_at: float, ttl_seconds: float) -> float:
    """When a hit becomes worth rebuilding ahead of its expiry (it is still served meanwhile).

    A random point late in its life, so that entries stored together, or copies of one entry in
    several processes, are not all rebuilt at the same moment: the first rebuild's result reaches
    the shared cache, and the others take it from there instead of building again.
    """
    return built_at + ttl_seconds * random.uniform(_REFRESH_FROM, _REFRESH_UNTIL)


@dataclass(frozen=True, slots=True)
class Peek:
    """A hit answered from this process's memory, without a round trip."""

    value: bytes
    built_at: float
    """When it was stored, in the cache's own clock."""
    refresh_due: bool
    """Old enough to be rebuilt before it expires; still served meanwhile."""


WarmFields = dict[str, list[str]]
"""Per invalidated scope, the fields that were cached in it: what readers were asking for."""


class ResponseCache(Protocol):
    backend: str

    def peek(self, scope: str, field: str) -> Peek | None: ...

    async def get(self, scope: str, field: str) -> CacheLookup: ...

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> bool: ...

    async def invalidate(self, scopes: Iterable[str]) -> WarmFields: ...

    async def healthy(self) -> bool: ...
