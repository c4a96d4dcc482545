"""The platform's state as `/metrics` reports it: a few aggregate queries, run when it is scraped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.domain.commands import CommandState
from tradeguard.queries.platform import PlatformFilters, status_counts
from tradeguard.store.models import AccountState, AlertDelivery, CloseCommand

_COUNTED_COMMANDS = (CommandState.PENDING.value, CommandState.SENT.value, CommandState.FAILED.value)


@dataclass(frozen=True)
class BusinessNumbers:
    accounts_by_status: dict[str, int]
    """per attention status, as the platform view ranks them: each account counted once"""
    halted_accounts: int
    stale_feeds: int
    commands_by_state: dict[str, int]
    """pending, sent and failed close commands"""
    failed_deliveries_by_notifier: dict[str, int]
    oldest_sent_command_age_seconds: float
    """0 when no command awaits its acknowledgement"""


async def business_numbers(session: AsyncSession, now: datetime) -> BusinessNumbers:
    accounts_by_status = await status_counts(session, PlatformFilters())
    halted, stale = (
        await session.execute(
            select(
                func.count().filter(not_(AccountState.trading_allowed)),
                func.count().filter(AccountState.feed_stale),
            )
        )
    ).one()
    commands = dict.fromkeys(_COUNTED_COMMANDS, 0)
    oldest_sent: datetime | None = None
    command_rows = await session.execute(
        select(CloseCommand.state, func.count(), func.min(CloseCommand.sent_at))
        .where(CloseCommand.state.in_(_COUNTED_COMMANDS))
        .group_by(CloseCommand.state)
    )
    for state, count, earliest_sent_at in command_rows:
        commands[state] = count
        if state == CommandState.SENT.value:
            oldest_sent = earliest_sent_at
    delivery_rows = await session.execute(
        select(AlertDelivery.notifier, func.count())
        .where(AlertDelivery.state == "failed")
        .group_by(AlertDelivery.notifier)
    )
    return BusinessNumbers(
        accounts_by_status=accounts_by_status,
        halted_accounts=halted,
        stale_feeds=stale,
        commands_by_state=commands,
        failed_deliveries_by_notifier=dict(delivery_rows.all()),
        oldest_sent_command_age_seconds=max((now - oldest_sent).total_seconds(), 0.0) if oldest_sent else 0.0,
    )
