"""Where every write ends: commit, invalidate, rebuild, publish, wake, in that order.

Every writer (snapshot ingest, polls and acknowledgements, expected trades, accounts, guard
configuration, re-arm, devices, the sweep) runs its transaction in `unit_of_work`; nothing else
commits what a cached view or the live stream shows, and this is the only caller of
`invalidate_accounts`. A write that overlaps an earlier one (a batch of snapshots started while the
batch before it is still being applied) names what to wait for between its commit and its ending,
so that the endings, and what subscribers see, come in the order of the writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.audit import committed_audit_events
from tradeguard.cache import ResponseCache, invalidate_accounts
from tradeguard.queries.service import ReadService
from tradeguard.store.audit_trail import AuditEntry
from tradeguard.store.models import AccountState
from tradeguard.stream.bus import EventBus
from tradeguard.stream.events import account_events


@dataclass
class UnitOfWork:
    """One write in progress: its session, and what it changed, for the steps after its commit.

    Every account that gets an audit entry counts as changed; a writer names the others.
    """

    session: AsyncSession
    owners: dict[int, int] = field(default_factory=dict)
    """account id → owner id of the accounts whose cached views the write changes"""
    states: dict[int, AccountState] = field(default_factory=dict)
    """account id → the state to send live subscribers"""
    committed: bool = False
    """whether the commit succeeded: a write that raised after it must not be done again"""

    def account_changed(self, account_id: int, owner_id: int) -> None:
        self.owners[account_id] = owner_id

    def publish_state(self, state: AccountState) -> None:
        self.states[state.account_id] = state


class WriteParts(Protocol):
    """What ending a write touches, as the process's services hold it."""

    cache: ResponseCache
    reads: ReadService
    bus: EventBus
    alerts_raised: asyncio.Event

    def write_session(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]: ...


@contextlib.asynccontextmanager
async def unit_of_work(
    parts: WriteParts, *, ending_after: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[UnitOfWork]:
    """A write's transaction, and the steps after its commit.

    The block's work is committed when it ends; if it raises, or the commit fails, it is rolled
    back and nothing after the commit happens. Then `ending_after`, if given, is awaited: the
    session is closed by then, so what it waits for never waits on this write's locks. The cache
    is invalidated before anything is published, so a subscriber refreshing on an event never
    reads the view from before it.
    """
    async with parts.write_session() as session:
        work = UnitOfWork(session)
        yield work
        await session.commit()
        work.committed = True
        audit_rows = committed_audit_events(session)
    if ending_after is not None:
        await ending_after()
    owners = await _owners_of_changed(parts.reads, work, audit_rows)
    if owners:
        warm = await invalidate_accounts(parts.cache, owners)
        for account, owner in owners.items():
            parts.reads.rewrite(warm[account], owner)
    await parts.bus.publish(account_events(audit_rows, work.states.values()))
    if any(row.event_type == "alert" for row in audit_rows):
        parts.alerts_raised.set()


async def _owners_of_changed(
    reads: ReadService, work: UnitOfWork, audit_rows: list[AuditEntry]
) -> dict[int, int]:
    owners = dict(work.owners)
    for account_id in {row.account_id for row in audit_rows} | work.states.keys():
        if account_id not in owners:
            owner = await reads.owner_of(account_id)
            if owner is not None:
                owners[account_id] = owner
    return owners
