"""The cache interface and the epoch rule that keeps a slow reader from caching stale data.

A read that misses remembers the scope's epoch; every invalidation replaces the epoch; a filler
whose epoch is no longer current stores nothing. So a response built from the database before a
write can never be cached after that write's invalidation, and a read after an acknowledged
ingest never sees older data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


def account_scope(account_id: int) -> str:
    return f"a:{account_id}"


def user_scope(user_id: int) -> str:
    return f"u:{user_id}"


@dataclass(frozen=True, slots=True)
class CacheLookup:
    value: bytes | None
    epoch: str | None
    """The scope's epoch when looked up; pass it back to `put`. None when the cache is unavailable."""

    @property
    def hit(self) -> bool:
        return self.value is not None


class ResponseCache(Protocol):
    backend: str

    async def get(self, scope: str, field: str) -> CacheLookup: ...

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> None: ...

    async def invalidate(self, scopes: Iterable[str]) -> None: ...

    async def healthy(self) -> bool: ...
