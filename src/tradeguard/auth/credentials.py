"""Whether a token's credentials are still the user's, answered on every request through the cache.

Every token names the credentials version its user had when it was issued. Deactivating a user,
or changing their role or password, raises the version in the database, commits, and then
invalidates the user's credentials scope in the cache (`credentials_changed`), exactly as a
write invalidates the views it changed. A request is served only while the token's version is
the user's current one, read through the cache: a hit answered from the process's memory in the
common case, the database on a miss. The cache's freshness rule then makes a change take effect
on the next request, in every process that shares the cache.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tradeguard.auth.tokens import Principal
from tradeguard.cache import ReadThrough, ResponseCache
from tradeguard.errors import NotAuthenticated
from tradeguard.store.models import User

log = logging.getLogger(__name__)

VIEW = "credentials"
_FIELD = "version"
_REVOKED = b"-"
"""Cached for a user who is inactive or gone: no version is current."""


def credentials_scope(user_id: int) -> str:
    # Its own scope: writes to the user's accounts drop `user_scope`, which must not cost this a miss.
    return f"c:{user_id}"


def _current(version: int) -> bytes:
    return str(version).encode()


class CurrentCredentials:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: ResponseCache) -> None:
        self._sessions = sessions
        self._cache = cache
        self._read_through = ReadThrough(cache)
        self._refreshing: dict[int, asyncio.Task] = {}

    def known_current(self, principal: Principal) -> bool:
        """True when this process's own copy says the token's credentials are current; False when
        it says otherwise, or has no copy (then `verify`).

        A copy nearing its expiry is rebuilt in the background, as the hot views are: otherwise
        every user's copy would expire under its readers and send one request a TTL to the database.
        """
        peeked = self._cache.peek(credentials_scope(principal.user_id), _FIELD)
        if peeked is None:
            return False
        if peeked.refresh_due:
            self._refresh_soon(principal.user_id, built_at=peeked.built_at)
        return peeked.value == _current(principal.credentials_version)

    async def verify(self, principal: Principal) -> None:
        """Refuses a token whose user was deactivated, or whose role or password changed, since it was issued."""
        current = await self._read_through.read(
            credentials_scope(principal.user_id), VIEW, _FIELD, lambda: self._build(principal.user_id)
        )
        if current != _current(principal.credentials_version):
            raise NotAuthenticated("token revoked: the user was deactivated or their credentials changed")

    async def wait_for_refreshes(self) -> None:
        """Until the background rebuilds under way are done (none may outlive the database engine)."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    def _refresh_soon(self, user_id: int, *, built_at: float) -> None:
        if user_id in self._refreshing:
            return
        rebuild = self._read_through.read(
            credentials_scope(user_id), VIEW, _FIELD, lambda: self._build(user_id), stale_before=built_at
        )
        task = asyncio.ensure_future(rebuild)
        self._refreshing[user_id] = task
        task.add_done_callback(lambda done: self._refreshed(user_id, done))

    def _refreshed(self, user_id: int, task: asyncio.Task) -> None:
        self._refreshing.pop(user_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("rebuilding a user's credentials failed: %r", task.exception())

    async def _build(self, user_id: int) -> bytes:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(User.is_active, User.credentials_version).where(User.id == user_id)
                )
            ).one_or_none()
        return _current(row.credentials_version) if row is not None and row.is_active else _REVOKED


async def credentials_changed(cache: ResponseCache, user_id: int) -> None:
    """After the commit that raised the user's credentials version: their tokens are refused from now on."""
    await cache.invalidate((credentials_scope(user_id),))
