"""What no snapshot brings: feeds that went quiet, commands nobody acknowledged, expired nonces.

Every claim is `FOR UPDATE SKIP LOCKED` and re-checks its condition, so any number of workers can
sweep the same database and none acts twice on the same account or command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.commands import expire_overdue
from tradeguard.actions.guarding import GuardPolicy, guard_on_clock
from tradeguard.ingest.nonces import delete_expired_nonces
from tradeguard.store.models import Account, AccountState

BATCH = 500


@dataclass
class SweepReport:
    stale_accounts: list[int] = field(default_factory=list)
    stale_states: list[AccountState] = field(default_factory=list)
    expired_commands: int = 0
    retried_commands: int = 0
    touched: dict[int, int] = field(default_factory=dict)
    """account id → owner id, for cache invalidation after commit."""


async def mark_stale_feeds(
    session: AsyncSession, *, now: datetime, policy: GuardPolicy, report: SweepReport
) -> None:
    """The clock's guards, for the accounts whose feed is overdue and not yet marked stale."""
    rows = (
        await session.execute(
            select(AccountState, Account)
            .join(Account, Account.id == AccountState.account_id)
            .where(AccountState.feed_stale.is_(False), AccountState.stale_at < now)
            .order_by(AccountState.stale_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True, of=AccountState)
        )
    ).all()
    for state, account in rows:
        outcome = await guard_on_clock(session, account, state, now=now, policy=policy)
        if not any(verdict.asks_anything for verdict in outcome.verdicts.values()):
            continue
        if state.feed_stale:
            report.stale_accounts.append(account.id)
        report.stale_states.append(state)
        report.touched[account.id] = account.owner_id


async def sweep(
    session: AsyncSession, *, now: datetime, notifiers: list[str], command_max_attempts: int
) -> SweepReport:
    report = SweepReport()
    policy = GuardPolicy(notifiers=notifiers, command_max_attempts=command_max_attempts)
    await mark_stale_feeds(session, now=now, policy=policy, report=report)
    expired, retried = await expire_overdue(session, now=now, max_attempts=command_max_attempts)
    report.expired_commands = len(expired)
    report.retried_commands = len(retried)
    if expired:
        owners = dict(
            (
                await session.execute(
                    select(Account.id, Account.owner_id).where(
                        Account.id.in_({c.account_id for c in expired})
                    )
                )
            ).all()
        )
        report.touched.update(owners)
    await delete_expired_nonces(session, now)
    return report
