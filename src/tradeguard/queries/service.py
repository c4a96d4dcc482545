"""Serves every read: authorises the account, answers from the cache, builds from the database on a miss.

Without `account_id` a read covers all the caller's own accounts (an admin's too: the accounts they
own, not the whole platform's) and is cached under the caller's scope; with one, it is cached under
that account's scope. Both scopes are dropped by `invalidate_accounts` on every write to the account,
and the hot views their owner had cached there are rebuilt right away (`rewrite`), so the next
read is still a hit. The operator's platform view is cached under the platform's scope, which every
write to any account drops; it is rebuilt by its next reader.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tradeguard.accounts.service import account_ids_of, may_see
from tradeguard.auth.tokens import Principal
from tradeguard.cache import (
    PLATFORM_SCOPE,
    ReadThrough,
    ResponseCache,
    WarmFields,
    account_scope,
    user_scope,
)
from tradeguard.domain.history import Resolution, recent_slots
from tradeguard.errors import NotFound
from tradeguard.queries.exposure import divergence_rates, platform_exposure
from tradeguard.queries.guards import guard_status_fields
from tradeguard.queries.history import alerts_page, deepest_drawdowns, equity_series
from tradeguard.queries.platform import PlatformFilters, platform_accounts_page
from tradeguard.queries.positions import find_position, open_positions_fields, position_out
from tradeguard.queries.read_models import (
    AlertPage,
    GuardStatus,
    OpenPositions,
    ReconciliationLogPage,
    ReconciliationStatus,
)
from tradeguard.queries.reconciliation import log_events, status_fields
from tradeguard.store.models import Account

Build = Callable[[AsyncSession, list[int]], Awaitable[BaseModel]]
HotBuild = Callable[[AsyncSession, int, int | None, list[int], dict], Awaitable[BaseModel]]

_MAX_REMEMBERED_OWNERS = 200_000
DRAWDOWN_BUCKETS = 30
"""How many buckets a platform drawdown series is cut into, whatever its span."""

log = logging.getLogger(__name__)


class ReadService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: ResponseCache) -> None:
        self._sessions = sessions
        self._read_through = ReadThrough(cache)
        self._background: set[asyncio.Task] = set()
        self._refreshing: set[tuple[str, str]] = set()
        # An account never changes owner, so who owns it can be remembered for the life of the process.
        self._owners: dict[int, int] = {}

    async def owner_of(self, account_id: int) -> int | None:
        owner = self._owners.get(account_id)
        if owner is None:
            async with self._sessions() as session:
                owner = await session.scalar(select(Account.owner_id).where(Account.id == account_id))
            if owner is not None:
                if len(self._owners) >= _MAX_REMEMBERED_OWNERS:
                    self._owners.clear()
                self._owners[account_id] = owner
        return owner

    async def authorize(self, principal: Principal, account_id: int) -> None:
        owner = await self.owner_of(account_id)
        if owner is None or not may_see(principal, owner):
            raise NotFound(f"account {account_id} not found")

    def known_visible(self, principal: Principal, account_id: int) -> bool:
        """Whether the caller may see the account, answered from memory only (False when unknown)."""
        owner = self._owners.get(account_id)
        return owner is not None and may_see(principal, owner)

    async def _cached(
        self,
        principal: Principal,
        account_id: int | None,
        view: str,
        params: dict,
        build: Build,
        *,
        stale_before: float | None = None,
    ) -> bytes:
        if account_id is not None:
            await self.authorize(principal, account_id)
        scope, field = cache_key(principal.user_id, account_id, view, params)

        async def build_body() -> bytes:
            async with self._sessions() as session:
                if account_id is not None:
                    account_ids = [account_id]
                else:
                    account_ids = await account_ids_of(session, principal.user_id)
                model = await build(session, account_ids)
            return model.__pydantic_serializer__.to_json(model)

        return await self._read_through.read(scope, view, field, build_body, stale_before=stale_before)

    async def hot_view(
        self,
        principal: Principal,
        account_id: int | None,
        view: str,
        params: dict,
        *,
        stale_before: float | None = None,
    ) -> bytes:
        """Reconciliation status, open positions or guard status: the reads kept warm."""
        hot_build = HOT_VIEWS[view]

        async def build(session: AsyncSession, account_ids: list[int]) -> BaseModel:
            return await hot_build(session, principal.user_id, account_id, account_ids, params)

        return await self._cached(principal, account_id, view, params, build, stale_before=stale_before)

    def refresh_soon(
        self, principal: Principal, account_id: int | None, view: str, params: dict, *, built_at: float
    ) -> None:
        """Rebuild a hot view whose copy (stored at `built_at`) nears its expiry; once, however often asked."""
        key = cache_key(principal.user_id, account_id, view, params)
        if key in self._refreshing:
            return
        self._refreshing.add(key)
        task = self._in_background(self.hot_view(principal, account_id, view, params, stale_before=built_at))
        task.add_done_callback(lambda _: self._refreshing.discard(key))

    def rewrite(self, warm: WarmFields, owner_id: int) -> None:
        """After a write, rebuild in the background the hot views the account's owner had cached."""
        # Read as the owner with no privilege: ownership alone lets them see what they had cached.
        owner = Principal(user_id=owner_id, role="user")
        for scope, fields in warm.items():
            account_id = account_of_scope(scope)
            for field in fields:
                hot = parse_hot_field(field)
                if hot is not None and hot[1] == owner_id:
                    view, _, params = hot
                    self._in_background(self.hot_view(owner, account_id, view, params, stale_before=math.inf))

    def _in_background(self, work: Awaitable[bytes]) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Only a cache fill failed: the next reader builds the view itself.
            log.warning("rebuilding a cached view failed: %r", task.exception())

    async def wait_for_rebuilds(self) -> None:
        """Until the background rebuilds under way are done (none may outlive the database engine)."""
        await asyncio.gather(*self._background, return_exceptions=True)

    async def reconciliation_status(self, principal: Principal, account_id: int | None) -> bytes:
        return await self.hot_view(principal, account_id, "reconciliation_status", {})

    async def open_positions(self, principal: Principal, account_id: int | None, symbol: str | None) -> bytes:
        params = {"symbol": symbol} if symbol is not None else {}
        return await self.hot_view(principal, account_id, "open_positions", params)

    async def guard_status(self, principal: Principal, account_id: int | None) -> bytes:
        return await self.hot_view(principal, account_id, "guard_status", {})

    async def reconciliation_logs(
        self,
        principal: Principal,
        account_id: int | None,
        *,
        limit: int,
        cursor: int | None,
        event_type: str | None,
        reason: str | None,
        symbol: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> bytes:
        filters = {
            "event_type": event_type,
            "reason": reason,
            "symbol": symbol,
            "since": since,
            "until": until,
        }

        async def build(session: AsyncSession, account_ids: list[int]) -> BaseModel:
            events = await log_events(session, account_ids, limit=limit, before_id=cursor, **filters)
            return ReconciliationLogPage(
                user_id=principal.user_id,
                account_id=account_id,
                events=events,
                next_cursor=events[-1].id if len(events) == limit else None,
            )

        params = {"limit": limit, "cursor": cursor, **filters}
        return await self._cached(principal, account_id, "reconciliation_logs", params, build)

    async def position(self, principal: Principal, position_id: int) -> bytes:
        async with self._sessions() as session:
            row = await find_position(session, position_id)
        if row is None or not may_see(principal, await self.owner_of(row.account_id)):
            raise NotFound(f"position {position_id} not found")
        model = position_out(row)
        return model.__pydantic_serializer__.to_json(model)

    async def alerts(
        self,
        principal: Principal,
        account_id: int | None,
        *,
        limit: int,
        cursor: int | None,
        level: str | None,
        kind: str | None,
    ) -> bytes:
        async def build(session: AsyncSession, account_ids: list[int]) -> BaseModel:
            alerts = await alerts_page(
                session, account_ids, limit=limit, before_id=cursor, level=level, kind=kind
            )
            return AlertPage(
                user_id=principal.user_id,
                account_id=account_id,
                alerts=alerts,
                next_cursor=alerts[-1].id if len(alerts) == limit else None,
            )

        params = {"limit": limit, "cursor": cursor, "level": level, "kind": kind}
        return await self._cached(principal, account_id, "alerts", params, build)

    async def equity(
        self,
        principal: Principal,
        account_id: int,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        max_points: int | None,
        resolution: Resolution | None = None,
    ) -> bytes:
        async def build(session: AsyncSession, account_ids: list[int]) -> BaseModel:
            account = await session.get(Account, account_id)
            return await equity_series(
                session,
                account,
                since=since,
                until=until,
                limit=limit,
                max_points=max_points,
                resolution=resolution,
            )

        params = {"since": since, "until": until, "limit": limit, "max_points": max_points}
        # Named only when asked for, so that the requests from before it share their entries still.
        if resolution is not None:
            params["resolution"] = resolution.value
        return await self._cached(principal, account_id, "equity", params, build)

    async def platform_exposure(self, principal: Principal) -> bytes:
        """Every account's positions, summed: one answer for every operator, dropped by every write."""
        _refuse_followers(principal, "exposure")

        async def build() -> bytes:
            async with self._sessions() as session:
                model = await platform_exposure(session)
            return model.__pydantic_serializer__.to_json(model)

        field = view_field("platform_exposure", "operators", {})
        return await self._read_through.read(PLATFORM_SCOPE, "platform_exposure", field, build)

    async def divergence_rates(self, principal: Principal, since: datetime) -> bytes:
        """Built on each request: its window moves with the clock, so no two answers are the same view."""
        _refuse_followers(principal, "divergence rates")
        async with self._sessions() as session:
            model = await divergence_rates(session, since)
        return model.__pydantic_serializer__.to_json(model)

    async def platform_drawdowns(
        self, principal: Principal, account_ids: list[int], span: timedelta
    ) -> bytes:
        """The accounts' drawdowns over the last `span` in `DRAWDOWN_BUCKETS` buckets: built on each
        request, as its window moves with the clock."""
        _refuse_followers(principal, "drawdowns")
        since, until, width = recent_slots(datetime.now(UTC), span, DRAWDOWN_BUCKETS)
        async with self._sessions() as session:
            model = await deepest_drawdowns(session, account_ids, since=since, until=until, width=width)
        return model.__pydantic_serializer__.to_json(model)

    async def platform_accounts(
        self, principal: Principal, filters: PlatformFilters, *, limit: int, cursor: int | None
    ) -> bytes:
        """Every account, for an operator; to anyone else there is no such thing (404)."""
        _refuse_followers(principal, "platform view")
        offset = cursor or 0

        async def build() -> bytes:
            async with self._sessions() as session:
                model = await platform_accounts_page(session, filters, limit=limit, offset=offset)
            return model.__pydantic_serializer__.to_json(model)

        params = {"limit": limit, "cursor": cursor, **vars(filters)}
        # One answer for every operator, shared by all of them.
        field = view_field("platform_accounts", "operators", params)
        return await self._read_through.read(PLATFORM_SCOPE, "platform_accounts", field, build)


def _refuse_followers(principal: Principal, view: str) -> None:
    """A platform-wide view does not exist for a follower: their numbers would include other people's."""
    if not principal.sees_every_account:
        raise NotFound(f"{view} not found")


async def _reconciliation_status(
    session: AsyncSession, user_id: int, account_id: int | None, account_ids: list[int], params: dict
) -> BaseModel:
    fields = await status_fields(session, account_ids)
    return ReconciliationStatus(user_id=user_id, account_id=account_id, **fields)


async def _open_positions(
    session: AsyncSession, user_id: int, account_id: int | None, account_ids: list[int], params: dict
) -> BaseModel:
    fields = await open_positions_fields(session, account_ids, params.get("symbol"))
    return OpenPositions(user_id=user_id, account_id=account_id, **fields)


async def _guard_status(
    session: AsyncSession, user_id: int, account_id: int | None, account_ids: list[int], params: dict
) -> BaseModel:
    fields = await guard_status_fields(session, account_ids)
    return GuardStatus(user_id=user_id, account_id=account_id, **fields)


HOT_VIEWS: dict[str, HotBuild] = {
    "reconciliation_status": _reconciliation_status,
    "open_positions": _open_positions,
    "guard_status": _guard_status,
}


def cache_key(user_id: int, account_id: int | None, view: str, params: dict) -> tuple[str, str]:
    """(scope, field) of a read: the scope is what a write invalidates, the field what was asked."""
    scope = account_scope(account_id) if account_id is not None else user_scope(user_id)
    return scope, view_field(view, str(user_id), params)


def view_field(view: str, reader: str, params: dict) -> str:
    """What was asked of a scope, by whom: the same parameters in any order are the same field."""
    present = {name: _param_text(value) for name, value in params.items() if value is not None}
    query = urlencode(sorted(present.items())) if present else ""
    return f"{view}:{reader}?{query}"


def parse_hot_field(field: str) -> tuple[str, int, dict[str, str]] | None:
    """The (view, user id, parameters) that `cache_key` made a hot view's field from; None for others."""
    view, _, rest = field.partition(":")
    user_text, _, query = rest.partition("?")
    if view not in HOT_VIEWS or not user_text.isdigit():
        return None
    return view, int(user_text), dict(parse_qsl(query))


def account_of_scope(scope: str) -> int | None:
    kind, _, number = scope.partition(":")
    return int(number) if kind == "a" else None


def _param_text(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
