"""The one read path every cached endpoint uses, and the one invalidation every write path uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from tradeguard.cache.base import (
    PLATFORM_SCOPE,
    CacheLookup,
    ResponseCache,
    WarmFields,
    account_scope,
    user_scope,
)
from tradeguard.metrics import CACHE_HITS, CACHE_MISSES, CACHE_REFRESHES, CACHED_VIEWS

_HITS = {view: CACHE_HITS.labels(view) for view in CACHED_VIEWS}
_MISSES = {view: CACHE_MISSES.labels(view) for view in CACHED_VIEWS}
_REFRESHES = {view: CACHE_REFRESHES.labels(view) for view in CACHED_VIEWS}


class ReadThrough:
    """Answers from the cache, else builds once for every concurrent reader who may share the build.

    A reader joins a build already under way only when it saw the same epoch as the builder: no
    invalidation came between the builder's lookup and the joiner's, so no write the joiner was
    told about can be missing from what the builder reads afterwards.
    """

    def __init__(self, cache: ResponseCache) -> None:
        self._cache = cache
        self._builds: dict[tuple[str, str, str], asyncio.Future[bytes]] = {}

    async def read(
        self,
        scope: str,
        view: str,
        field: str,
        build: Callable[[], Awaitable[bytes]],
        *,
        stale_before: float | None = None,
    ) -> bytes:
        """The cached body, else a fresh one.

        With `stale_before` (in the cache's clock; `math.inf` for always), this is a rebuild ahead
        of readers: an entry stored before then is rebuilt, a younger one (another process's
        rebuild) is taken as it is.
        """
        rebuilding = stale_before is not None
        if not rebuilding:
            peeked = self._cache.peek(scope, field)
            if peeked is not None:
                _HITS[view].inc()
                return peeked.value
        lookup = await self._cache.get(scope, field)
        if lookup.value is not None:
            if not rebuilding:
                _HITS[view].inc()
                return lookup.value
            if lookup.built_at is not None and lookup.built_at > stale_before:
                return lookup.value
        (_REFRESHES if rebuilding else _MISSES)[view].inc()
        if lookup.epoch is None:
            return await build()
        key = (scope, field, lookup.epoch)
        under_way = self._builds.get(key)
        if under_way is None:
            # A task of its own: a reader who hangs up does not cancel the build for the others.
            under_way = asyncio.ensure_future(self._build_and_store(scope, field, build, lookup))
            self._builds[key] = under_way
            under_way.add_done_callback(lambda _: self._builds.pop(key, None))
        return await asyncio.shield(under_way)

    async def _build_and_store(
        self, scope: str, field: str, build: Callable[[], Awaitable[bytes]], lookup: CacheLookup
    ) -> bytes:
        body = await build()
        await self._cache.put(scope, field, body, lookup)
        return body


async def invalidate_accounts(cache: ResponseCache, owners: Mapping[int, int]) -> dict[int, WarmFields]:
    """Drop every cached view of each account (id → owner id), its owner's all-accounts views and
    the platform's views included, in one invalidation; per account, what its own scopes held."""
    scopes = {account: (account_scope(account), user_scope(owner)) for account, owner in owners.items()}
    own = dict.fromkeys(scope for pair in scopes.values() for scope in pair)
    # The platform's views are no one account's: nothing of theirs is rebuilt ahead of a reader.
    warm = await cache.invalidate([*own, PLATFORM_SCOPE])
    # An owner's scope shared by several of the accounts goes to the first: its views are rebuilt once.
    return {account: {scope: warm.pop(scope, []) for scope in pair} for account, pair in scopes.items()}
