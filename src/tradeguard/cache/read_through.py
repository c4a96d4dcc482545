"""The one read path every cached endpoint uses, and the one invalidation every write path uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tradeguard.cache.base import ResponseCache, account_scope, user_scope
from tradeguard.metrics import CACHE_HITS, CACHE_MISSES


async def read_through(
    cache: ResponseCache, scope: str, view: str, field: str, build: Callable[[], Awaitable[bytes]]
) -> bytes:
    lookup = await cache.get(scope, field)
    if lookup.value is not None:
        CACHE_HITS.labels(view).inc()
        return lookup.value
    CACHE_MISSES.labels(view).inc()
    body = await build()
    await cache.put(scope, field, body, lookup)
    return body


async def invalidate_account(cache: ResponseCache, account_id: int, owner_id: int) -> None:
    """Drop every cached view of the account, including its owner's all-accounts views."""
    await cache.invalidate((account_scope(account_id), user_scope(owner_id)))


async def invalidate_user(cache: ResponseCache, user_id: int) -> None:
    await cache.invalidate((user_scope(user_id),))
