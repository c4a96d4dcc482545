"""The ingest step: a validated snapshot becomes rows, in one transaction.

lock the state → too old? → reconcile → what changed (`domain.sync`) → store positions, trades,
log entries → settle commands → guards → store the state and the equity history; the unit of
work commits and invalidates. What the snapshot means is decided in `domain.reconcile` and
`domain.sync`; the rows are read and written by `store.accounts_state`; what is rare (audit
entries, alerts, close commands) goes through the session.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.audit import audit_event
from tradeguard.actions.commands import (
    any_unsettled,
    deliverable,
    mark_sent,
    settle_with_snapshot,
    unsettled_commands,
)
from tradeguard.actions.guarding import GuardOutcome, GuardPolicy, act_on_guards
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.domain.model import BrokerPosition
from tradeguard.domain.reconcile import ReconcileSettings, Reconciliation, reconcile
from tradeguard.domain.sync import FEED_RESUMED, SyncEntry, reconciled_at, sync_changes, too_old
from tradeguard.errors import NotAuthenticated
from tradeguard.ingest.closes import deal_history, log_closes
from tradeguard.ingest.devices import DeviceIdentity
from tradeguard.ingest.validation import SnapshotIn
from tradeguard.store import accounts_state as rows
from tradeguard.store.models import Account, AccountState, CloseCommand
from tradeguard.values import ServerClock


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """Deployment-wide settings the ingest step needs."""

    guards: GuardPolicy
    command_timeout: timedelta
    clock_skew_tolerance: timedelta

    def clock_at(self, now: datetime) -> ServerClock:
        """What the times of a body that arrived `now` are checked against."""
        return ServerClock(now, self.clock_skew_tolerance)


@dataclass(frozen=True, slots=True)
class LockedAccount:
    """An account and its state, the state's row locked until the transaction ends."""

    account: Account
    state: AccountState


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    applied: bool
    account_id: int
    clock_offset: timedelta
    """The snapshot's taken_at minus the server's clock when it arrived."""
    state: AccountState
    reconciliation: Reconciliation | None
    guards: GuardOutcome | None
    commands: list[CloseCommand]


REVOKED = "unknown or revoked device"


async def lock_account(session: AsyncSession, device: DeviceIdentity) -> LockedAccount:
    """The device's account and its state, locked; a revoked device is refused here."""
    locked = await rows.lock_state(session, device.account_id, device.device_id)
    if locked is None:
        raise NotAuthenticated(REVOKED)
    account, state = locked
    return LockedAccount(account=account, state=state)


# Whether any command awaits settling comes with the stored positions, saving a statement.
_POSITIONS_AND_ANY_UNSETTLED = rows.positions_with(any_unsettled(bindparam("account_id")))
_POSITIONS_AND_ANY_UNSETTLED_OF_ACCOUNTS = rows.positions_of_accounts_with(any_unsettled)


async def read_accounts(session: AsyncSession, account_ids: Iterable[int]) -> dict[int, rows.StoredRows]:
    """What `apply_snapshot` reads first, for several accounts in two statements."""
    return await rows.read_accounts(session, _POSITIONS_AND_ANY_UNSETTLED_OF_ACCOUNTS, account_ids)


async def apply_snapshot(
    session: AsyncSession,
    locked: LockedAccount,
    snapshot: SnapshotIn,
    *,
    received_at: datetime,
    started: float,
    instruments: InstrumentTable,
    policy: IngestPolicy,
    stored: rows.StoredRows | None = None,
    pending: rows.PendingWrites | None = None,
) -> IngestOutcome:
    """Apply the snapshot inside the session's transaction; the caller commits and invalidates.

    `stored` is what `read_accounts` read of the account in this transaction, if nothing has
    written it since; with `pending`, the UPDATEs of the positions and the state are held there
    for the caller to send (`rows.write_pending`). A snapshot too old to apply is acknowledged and changes nothing but the
    commands it hands out.
    """
    state, account = locked.state, locked.account
    if stored is None:
        any_to_settle, stored_positions = await rows.read_positions_with(
            session, _POSITIONS_AND_ANY_UNSETTLED, account.id
        )
    else:
        any_to_settle, stored_positions = stored.answer, stored.positions
    unsettled = await unsettled_commands(session, account.id) if any_to_settle else []
    clock_offset = snapshot.taken_at - received_at
    if too_old(state.last_snapshot_taken_at, snapshot.taken_at):
        commands = _deliver(session, unsettled, received_at, policy)
        return IngestOutcome(False, account.id, clock_offset, state, None, None, commands)

    open_trades = await rows.open_trades(session, account.id) if stored is None else stored.open_trades
    positions = [position.to_domain() for position in snapshot.positions]
    deals = [deal.to_domain() for deal in snapshot.closed_deals]
    previous = rows.previous_sync_of(stored_positions, state)
    result = reconcile(
        [open_trade.trade for open_trade in open_trades],
        positions,
        instruments=instruments,
        now=reconciled_at(snapshot.taken_at, received_at),
        settings=reconcile_settings_of(account),
        previous=previous.held,
        closed_deals=deals,
        deal_history=await deal_history(session, account.id, deals),
    )
    changes = sync_changes(previous, positions, result)

    await rows.store_positions(
        session,
        account.id,
        stored_positions,
        changes.held,
        changes.gone_tickets,
        snapshot.taken_at,
        pending,
    )
    await rows.close_trades(session, open_trades, changes.closed_trade_ids, snapshot.taken_at)
    for entry in changes.entries():
        _log(session, account.id, entry, received_at)
    log_closes(session, account.id, result, received_at)
    settle_with_snapshot(
        session,
        unsettled,
        {position.ticket for position in positions},
        {closed.ticket: closed for closed in result.closed},
        received_at,
    )
    matched_signals = {pair.position.ticket: pair.trade.signal_id for pair in result.matches}
    guards = await _run_guards(session, locked, snapshot, positions, matched_signals, received_at, policy)
    if changes.feed_resumed:
        _log(session, account.id, FEED_RESUMED, received_at)

    state.status = result.status.value
    state.error_message = None
    state.total_syncs += 1
    state.last_sync_at = received_at
    state.last_snapshot_taken_at = snapshot.taken_at
    state.balance = snapshot.balance
    state.equity = snapshot.equity
    state.margin = snapshot.margin
    state.open_positions_count = result.open_positions_count
    state.matched_positions = result.matched_positions
    state.divergences_detected = result.divergences_detected
    state.open_divergences = rows.open_divergences_json(changes.open_divergences)
    state.feed_stale = False
    state.stale_at = received_at + timedelta(seconds=account.stale_after_seconds)
    commands = _deliver(session, [*unsettled, *guards.new_commands], received_at, policy)
    # Measured before the write so that the counters go out in the state's one UPDATE.
    state.last_sync_duration_ms = round(_elapsed_ms(started), 3)
    await rows.store_state_and_equity(session, state, pending)
    return IngestOutcome(True, account.id, clock_offset, state, result, guards, commands)


async def _run_guards(
    session: AsyncSession,
    locked: LockedAccount,
    snapshot: SnapshotIn,
    positions: list[BrokerPosition],
    matched_signals: dict[str, str | None],
    received_at: datetime,
    policy: IngestPolicy,
) -> GuardOutcome:
    """The guards judge the snapshot at its own time; their records are stamped with its arrival."""
    return await act_on_guards(
        session,
        locked.account,
        locked.state,
        equity=snapshot.equity,
        balance=snapshot.balance,
        positions=positions,
        quotes=[quote.to_domain() for quote in snapshot.quotes],
        matched_signals=matched_signals,
        evaluated_at=snapshot.taken_at,
        now=received_at,
        policy=policy.guards,
        command_timeout=policy.command_timeout,
    )


def _log(session: AsyncSession, account_id: int, entry: SyncEntry, at: datetime) -> None:
    audit_event(
        session,
        account_id,
        entry.event.value,
        entry.message,
        at=at,
        reason=entry.reason,
        symbol=entry.symbol,
        ticket=entry.ticket,
        trade_id=entry.trade_id,
    )


def _deliver(
    session: AsyncSession, commands: list[CloseCommand], now: datetime, policy: IngestPolicy
) -> list[CloseCommand]:
    """The ingest answer carries every live command; those delivered for the first time become sent."""
    live = deliverable(commands)
    live.sort(key=lambda command: (command.created_at, command.ticket, command.id))
    mark_sent(session, live, now=now, timeout=policy.command_timeout)
    return live


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def reconcile_settings_of(account: Account) -> ReconcileSettings:
    return ReconcileSettings(
        grace_seconds=account.grace_seconds,
        match_window_seconds=account.match_window_seconds,
        entry_slippage_pips=account.entry_slippage_pips,
    )
