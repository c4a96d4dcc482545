"""An operator's actions on many accounts at once: halt, re-arm, close a symbol's positions.

Each carries out, account by account, what the guards and the owner's re-arm do to one account
(`guarding.halt_account`, `guarding.rearm_account`, `commands.issue_close_commands`), and adds
to every audit entry it writes the operator's user id and the action's id, shared by all of them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.commands import CloseTarget, issue_close_commands
from tradeguard.actions.guarding import GuardPolicy, halt_account, rearm_account
from tradeguard.ingest.trades import OPEN
from tradeguard.store.models import Account, AccountState, CloseCommand, ExpectedTrade
from tradeguard.store.models import BrokerPosition as BrokerPositionRow

OPERATOR = "operator"
"""The reason of an operator's `halted` entries and the cause of their close commands; no guard has this name."""


def new_bulk_action_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Selection:
    """The accounts following a signal (holding an open expected trade of it), or those of a broker."""

    signal: str | None = None
    broker: str | None = None

    def __post_init__(self) -> None:
        if (self.signal is None) == (self.broker is None):
            raise ValueError("a selection names a signal or a broker, not both")

    def accounts(self) -> Select:
        """The selected accounts with their states, in id order, the states locked for this write."""
        query = select(Account, AccountState).join(AccountState, AccountState.account_id == Account.id)
        if self.signal is not None:
            query = query.where(
                exists().where(
                    ExpectedTrade.account_id == Account.id,
                    ExpectedTrade.signal_id == self.signal,
                    ExpectedTrade.status == OPEN,
                )
            )
        else:
            query = query.where(Account.broker == self.broker)
        # In id order, so that two bulk actions over the same accounts never wait on each other in a cycle.
        return query.order_by(Account.id).with_for_update(of=AccountState)


@dataclass(frozen=True, slots=True)
class TradingChange:
    account: Account
    state: AccountState
    changed: bool
    """halted (or re-armed) by this action; false when it already was"""


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts, and the id every entry of this action carries."""

    user_id: int
    bulk_action_id: str = field(default_factory=new_bulk_action_id)

    @property
    def audited(self) -> dict[str, object]:
        return {"user_id": self.user_id, "bulk_action_id": self.bulk_action_id}


async def halt_selected(
    session: AsyncSession,
    selection: Selection,
    *,
    reason: str | None,
    operator: Operator,
    now: datetime,
    notifiers: list[str],
) -> list[TradingChange]:
    """Halt every selected account as a guard does; one already halted keeps its first reason."""
    reason = reason or f"halted by user {operator.user_id}"
    changes = []
    for account, state in await session.execute(selection.accounts()):
        halted = halt_account(
            session,
            account.id,
            state,
            reason,
            by=OPERATOR,
            now=now,
            notifiers=notifiers,
            audited=operator.audited,
        )
        changes.append(TradingChange(account, state, halted))
    return changes


async def rearm_selected(
    session: AsyncSession, selection: Selection, *, operator: Operator, now: datetime, policy: GuardPolicy
) -> list[TradingChange]:
    """Re-arm every selected account that is halted, as its owner's re-arm does; the others are left as they are."""
    changes = []
    for account, state in await session.execute(selection.accounts()):
        if state.trading_allowed:
            changes.append(TradingChange(account, state, changed=False))
            continue
        rearmed = await rearm_account(
            session,
            account,
            by_user_id=operator.user_id,
            reset_peak=False,
            now=now,
            policy=policy,
            audited={"bulk_action_id": operator.bulk_action_id},
        )
        changes.append(TradingChange(account, rearmed, changed=True))
    return changes


@dataclass(frozen=True, slots=True)
class SymbolClose:
    account_id: int
    owner_id: int
    issued: list[CloseCommand]
    not_issued: list[str]
    """tickets that got no new command: one of the operator's is still live, or it had its attempts"""


async def close_symbol(
    session: AsyncSession,
    symbol: str,
    *,
    signal: str | None,
    operator: Operator,
    now: datetime,
    max_attempts: int,
) -> list[SymbolClose]:
    """A close command, cause `operator`, for every open position in `symbol` the brokers last reported;
    with `signal`, only for those matched to an expected trade of that signal.

    The commands are pending: bridges receive them on their next poll.
    """
    query = (
        select(
            BrokerPositionRow.account_id,
            Account.owner_id,
            BrokerPositionRow.ticket,
            BrokerPositionRow.symbol,
            BrokerPositionRow.volume,
        )
        .join(Account, Account.id == BrokerPositionRow.account_id)
        .where(BrokerPositionRow.symbol == symbol)
        .order_by(BrokerPositionRow.account_id, BrokerPositionRow.ticket)
    )
    if signal is not None:
        query = query.join(
            ExpectedTrade,
            and_(
                ExpectedTrade.account_id == BrokerPositionRow.account_id,
                ExpectedTrade.trade_id == BrokerPositionRow.matched_trade_id,
            ),
        ).where(ExpectedTrade.signal_id == signal)
    targets: dict[tuple[int, int], list[CloseTarget]] = defaultdict(list)
    for account_id, owner_id, ticket, held_symbol, volume in await session.execute(query):
        targets[account_id, owner_id].append(CloseTarget(ticket, held_symbol, volume))
    closes = []
    for (account_id, owner_id), account_targets in targets.items():
        issued = await issue_close_commands(
            session,
            account_id,
            account_targets,
            cause=OPERATOR,
            now=now,
            max_attempts=max_attempts,
            audited=operator.audited,
        )
        issued_tickets = {command.ticket for command in issued}
        not_issued = [target.ticket for target in account_targets if target.ticket not in issued_tickets]
        closes.append(SymbolClose(account_id, owner_id, issued, not_issued))
    return closes
