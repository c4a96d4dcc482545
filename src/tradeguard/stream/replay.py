"""Where a stream starts: which accounts it covers, and what a reconnecting client missed."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tradeguard.accounts.service import account_ids_of
from tradeguard.auth.tokens import Principal
from tradeguard.queries.service import ReadService
from tradeguard.store.models import AccountState, ReconciliationEvent
from tradeguard.stream.bus import StreamEvent
from tradeguard.stream.events import audit_stream_event, sync_event

MAX_REPLAY = 1000


async def stream_accounts(
    reads: ReadService,
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    account_id: int | None,
) -> list[int]:
    if account_id is not None:
        await reads.authorize(principal, account_id)
        return [account_id]
    async with sessions() as session:
        return await account_ids_of(session, principal.user_id)


async def stream_start(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    account_ids: list[int] | None,
    last_event_id: int | None,
) -> list[StreamEvent]:
    """hello, then the audit entries after `last_event_id` (oldest first), then each account's state.

    `account_ids` None is the platform-wide stream: every account's entries, and no states (the
    platform view is where they are read, a page at a time)."""
    of_accounts = [] if account_ids is None else [ReconciliationEvent.account_id.in_(account_ids)]
    covers_any = account_ids is None or bool(account_ids)
    async with sessions() as session:
        latest = (
            await session.scalar(select(func.max(ReconciliationEvent.id)).where(*of_accounts))
            if covers_any
            else None
        )
        missed: list[ReconciliationEvent] = []
        if last_event_id is not None and covers_any:
            missed = list(
                (
                    await session.scalars(
                        select(ReconciliationEvent)
                        .where(*of_accounts, ReconciliationEvent.id > last_event_id)
                        .order_by(ReconciliationEvent.id)
                        .limit(MAX_REPLAY)
                    )
                ).all()
            )
        states = (
            []
            if account_ids is None
            else list(
                (
                    await session.scalars(
                        select(AccountState).where(AccountState.account_id.in_(account_ids))
                    )
                ).all()
            )
        )
    hello = orjson.dumps(
        {
            "user_id": principal.user_id,
            "accounts": account_ids,
            "last_event_id": latest,
            "platform": account_ids is None,
        }
    )
    return [
        StreamEvent("hello", 0, hello),
        *(audit_stream_event(row) for row in missed),
        *(sync_event(state) for state in states),
    ]
