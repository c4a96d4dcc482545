"""What a replay reads: an account's equity history in time order, an audit entry, and the rules in
force when it was written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.accounts.risk_rules import RuleSetIn
from tradeguard.accounts.service import stored_guard_config
from tradeguard.domain.guards.drawdown import settings_rule_set
from tradeguard.domain.guards.rules import RuleSet
from tradeguard.domain.history import Resolution
from tradeguard.domain.replay import HistoryPoint
from tradeguard.errors import NotFound
from tradeguard.store.models import (
    Account,
    AccountSnapshot,
    EquityMinute,
    HistoryRetention,
    ReconciliationEvent,
)


@dataclass(frozen=True, slots=True)
class ReplayHistory:
    points: list[HistoryPoint]
    from_minutes: int
    """how many of the points are minute aggregates (each minute's last snapshot) rather than raw"""


async def replay_history(
    session: AsyncSession, account_id: int, *, since: datetime | None, until: datetime | None
) -> ReplayHistory:
    """The account's snapshots with `since <= taken_at <= until`: the raw points kept, and before
    them the last snapshot of each rolled-up minute."""
    raw_kept_from = await session.scalar(
        select(HistoryRetention.kept_from).where(HistoryRetention.series == Resolution.RAW.value)
    )
    raw = select(AccountSnapshot.taken_at, AccountSnapshot.balance, AccountSnapshot.equity).where(
        AccountSnapshot.account_id == account_id
    )
    if since is not None:
        raw = raw.where(AccountSnapshot.taken_at >= since)
    if until is not None:
        raw = raw.where(AccountSnapshot.taken_at <= until)
    minutes: list[HistoryPoint] = []
    if raw_kept_from is not None:
        # Raw points older than the boundary arrived after their day was rolled up: the next
        # roll-up takes them, and their minute already counts its earlier ones.
        raw = raw.where(AccountSnapshot.taken_at >= raw_kept_from)
        rolled = select(
            EquityMinute.last_taken_at, EquityMinute.balance_last, EquityMinute.equity_last
        ).where(EquityMinute.account_id == account_id, EquityMinute.last_taken_at < raw_kept_from)
        if since is not None:
            rolled = rolled.where(EquityMinute.last_taken_at >= since)
        if until is not None:
            rolled = rolled.where(EquityMinute.last_taken_at <= until)
        minutes = [HistoryPoint(*row) for row in await session.execute(rolled.order_by(EquityMinute.minute))]
    points = [HistoryPoint(*row) for row in await session.execute(raw.order_by(AccountSnapshot.taken_at))]
    return ReplayHistory(points=minutes + points, from_minutes=len(minutes))


async def account_audit_entry(session: AsyncSession, account_id: int, entry_id: int) -> ReconciliationEvent:
    entry = await session.get(ReconciliationEvent, entry_id)
    if entry is None or entry.account_id != account_id:
        raise NotFound(f"account {account_id} has no audit entry {entry_id}")
    return entry


@dataclass(frozen=True, slots=True)
class RulesInForce:
    rule_set: RuleSet
    source: str
    """which rules these are, said for the reader"""


async def rules_in_force(session: AsyncSession, account: Account, entry: ReconciliationEvent) -> RulesInForce:
    """The rule set the account was judged by when `entry` was written: the one the latest
    `guard_rules_changed` entry before it set, or the account's drawdown settings' when that entry
    went back to them or there is none (its settings as they are now: their changes are not kept)."""
    change = await session.scalar(
        select(ReconciliationEvent)
        .where(
            ReconciliationEvent.account_id == account.id,
            ReconciliationEvent.event_type == "guard_rules_changed",
            ReconciliationEvent.id < entry.id,
        )
        .order_by(ReconciliationEvent.id.desc())
        .limit(1)
    )
    stored = None if change is None else orjson.loads(change.details).get("rule_set")
    if stored is not None:
        rule_set = RuleSetIn.model_validate(stored).to_domain()
        return RulesInForce(
            rule_set, f"the rules set by audit entry {change.id} at {change.created_at:%Y-%m-%d %H:%M:%S}"
        )
    settings = settings_rule_set(stored_guard_config(account))
    if change is None:
        why = "no rules were set before the entry"
    else:
        why = f"audit entry {change.id} went back to them"
    return RulesInForce(settings, f"the account's drawdown settings as they are now ({why})")
