"""The ingest step: a validated snapshot becomes rows, in one transaction.

load state (locked) → reconcile → persist positions, snapshot, log changes, counters → commit →
invalidate the account's cache. Nothing here decides anything: `domain.reconcile` does.

Every snapshot runs the statements here, so they are Core statements built once: ORM loading and
the unit of work cost several times the round trip itself. The account and its state are built
as ORM objects outside the session, so the guards and the answer read them as before, and the
state goes back in one UPDATE; what is rare (audit entries, alerts, close commands) still goes
through the session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import Row, bindparam, delete, insert, literal_column, select, update
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
from tradeguard.domain import model as domain
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.domain.reconcile import PreviousSnapshot, ReconcileSettings, Reconciliation, reconcile
from tradeguard.errors import NotAuthenticated
from tradeguard.ingest.closes import deal_history, log_closes
from tradeguard.ingest.devices import DeviceIdentity
from tradeguard.ingest.validation import SnapshotIn
from tradeguard.store.models import (
    Account,
    AccountSnapshot,
    AccountState,
    BrokerPosition,
    CloseCommand,
    Device,
    ExpectedTrade,
)
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


_states = AccountState.__table__
_accounts = Account.__table__
_positions = BrokerPosition.__table__
_trades = ExpectedTrade.__table__
_snapshots = AccountSnapshot.__table__
_devices = Device.__table__

# Joined with the device, so that the lock also refuses a device revoked since the process
# remembered it (`verify_known_device`), without a statement of its own.
_LOCKED_STATE = (
    select(*_states.c, *_accounts.c)
    .join_from(_states, _accounts, _accounts.c.id == _states.c.account_id)
    .join(_devices, _devices.c.account_id == _states.c.account_id)
    .where(
        _states.c.account_id == bindparam("account_id"),
        _devices.c.device_id == bindparam("device_id"),
        _devices.c.revoked_at.is_(None),
    )
    .with_for_update(of=_states)
)
_STATE_KEYS = tuple(_states.c.keys())
_ACCOUNT_KEYS = tuple(_accounts.c.keys())
_STATE_WRITTEN = tuple(key for key in _STATE_KEYS if key != "account_id")
# The SET clause is every column but the key: the row is locked, so nothing else changed it.
_UPDATE_STATE = (
    update(_states)
    .where(_states.c.account_id == bindparam("key_account_id"))
    .values({key: bindparam(f"new_{key}", type_=_states.c[key].type) for key in _STATE_WRITTEN})
)
# The equity history's row is a copy of the state just written.
_EQUITY_ROW = {
    "account_id": _states.c.account_id,
    "taken_at": _states.c.last_snapshot_taken_at,
    "received_at": _states.c.last_sync_at,
    "balance": _states.c.balance,
    "equity": _states.c.equity,
    "margin": _states.c.margin,
    "peak_equity": _states.c.peak_equity,
    "drawdown_pct": _states.c.drawdown_pct,
}
_COPY_STATE_TO_EQUITY = insert(_snapshots).from_select(
    list(_EQUITY_ROW),
    select(*_EQUITY_ROW.values()).where(_states.c.account_id == bindparam("key_account_id")),
)
# PostgreSQL does both in one statement, its UPDATE's RETURNING feeding the INSERT.
_written = _UPDATE_STATE.returning(*_EQUITY_ROW.values()).cte("written")
_UPDATE_STATE_COPYING_EQUITY = insert(_snapshots).from_select(
    list(_EQUITY_ROW), select(*(_written.c[column.key] for column in _EQUITY_ROW.values()))
)
# Whether any command awaits settling comes with the stored positions, saving a statement; the
# outer join from one row answers it for an account that holds no position too.
_POSITIONS_AND_ANY_UNSETTLED = select(
    any_unsettled(bindparam("account_id")).label("any_unsettled"), *_positions.c
).select_from(
    select(literal_column("1"))
    .subquery("one")
    .outerjoin(_positions, _positions.c.account_id == bindparam("account_id"))
)
_INSERT_POSITIONS = insert(_positions)
_UPDATE_POSITION = update(_positions).where(_positions.c.id == bindparam("row_id"))
_OPEN_TRADES = select(
    _trades.c.id,
    _trades.c.trade_id,
    _trades.c.symbol,
    _trades.c.side,
    _trades.c.volume,
    _trades.c.entry_price,
    _trades.c.received_at,
    _trades.c.opened_at,
    _trades.c.stop_loss,
    _trades.c.take_profit,
    _trades.c.ticket,
).where(_trades.c.account_id == bindparam("account_id"), _trades.c.status == "open")


async def lock_account(session: AsyncSession, device: DeviceIdentity) -> LockedAccount:
    """The device's account and its state, locked; a revoked device is refused here."""
    row = (
        await session.execute(_LOCKED_STATE, {"account_id": device.account_id, "device_id": device.device_id})
    ).first()
    if row is None:
        raise NotAuthenticated("unknown or revoked device")
    split = len(_STATE_KEYS)
    return LockedAccount(
        account=Account(**dict(zip(_ACCOUNT_KEYS, row[split:], strict=True))),
        state=AccountState(**dict(zip(_STATE_KEYS, row[:split], strict=True))),
    )


async def apply_snapshot(
    session: AsyncSession,
    locked: LockedAccount,
    snapshot: SnapshotIn,
    *,
    received_at: datetime,
    started: float,
    instruments: InstrumentTable,
    policy: IngestPolicy,
) -> IngestOutcome:
    """Apply the snapshot inside the session's transaction; the caller commits and invalidates.

    A snapshot not newer than the last one applied is acknowledged and changes nothing: bridges
    retry, and networks reorder.
    """
    state, account = locked.state, locked.account
    rows = (await session.execute(_POSITIONS_AND_ANY_UNSETTLED, {"account_id": account.id})).all()
    unsettled = await unsettled_commands(session, account.id) if rows[0].any_unsettled else []
    clock_offset = snapshot.taken_at - received_at
    if state.last_snapshot_taken_at is not None and snapshot.taken_at <= state.last_snapshot_taken_at:
        commands = _deliver(session, unsettled, received_at, policy)
        return IngestOutcome(False, account.id, clock_offset, state, None, None, commands)

    stored_positions = {row.ticket: row for row in rows if row.id is not None}
    open_trades = (await session.execute(_OPEN_TRADES, {"account_id": account.id})).all()
    positions = [position.to_domain() for position in snapshot.positions]
    deals = [deal.to_domain() for deal in snapshot.closed_deals]
    result = reconcile(
        [expected_trade_of(row) for row in open_trades],
        positions,
        instruments=instruments,
        now=min(snapshot.taken_at, received_at),
        settings=reconcile_settings_of(account),
        previous=PreviousSnapshot(
            positions=tuple(broker_position_of(row) for row in stored_positions.values()),
            trade_id_by_ticket={
                row.ticket: row.matched_trade_id for row in stored_positions.values() if row.matched_trade_id
            },
        ),
        closed_deals=deals,
        deal_history=await deal_history(session, account.id, deals),
    )

    await _store_positions(session, account.id, positions, stored_positions, result, snapshot.taken_at)
    await _close_expected_trades(session, open_trades, result, snapshot.taken_at)
    _log_changes(session, account.id, state, stored_positions, result, received_at)
    settle_with_snapshot(
        session,
        unsettled,
        {position.ticket for position in positions},
        {closed.ticket: closed for closed in result.closed},
        received_at,
    )
    guards = await act_on_guards(
        session,
        account,
        state,
        equity=snapshot.equity,
        balance=snapshot.balance,
        positions=positions,
        quotes=[quote.to_domain() for quote in snapshot.quotes],
        evaluated_at=snapshot.taken_at,
        now=received_at,
        policy=policy.guards,
    )
    if state.feed_stale:
        audit_event(session, account.id, "feed_resumed", "snapshots arrive again", at=received_at)

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
    state.open_divergences = _divergence_rows_json(result)
    state.feed_stale = False
    state.stale_at = received_at + timedelta(seconds=account.stale_after_seconds)
    commands = _deliver(session, [*unsettled, *guards.new_commands], received_at, policy)
    # Measured before the write so that the counters go out in the state's one UPDATE.
    state.last_sync_duration_ms = round(_elapsed_ms(started), 3)
    await _store_state_and_equity(session, state)
    return IngestOutcome(True, account.id, clock_offset, state, result, guards, commands)


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


async def _store_state_and_equity(session: AsyncSession, state: AccountState) -> None:
    """The state's one UPDATE, and the equity history's row (peak and drawdown are the guard's)."""
    values = {f"new_{key}": getattr(state, key) for key in _STATE_WRITTEN}
    values["key_account_id"] = state.account_id
    if session.bind.dialect.name == "postgresql":
        await session.execute(_UPDATE_STATE_COPYING_EQUITY, values)
    else:
        await session.execute(_UPDATE_STATE, values)
        await session.execute(_COPY_STATE_TO_EQUITY, {"key_account_id": state.account_id})


def expected_trade_of(row: Row) -> domain.ExpectedTrade:
    return domain.ExpectedTrade(
        trade_id=row.trade_id,
        symbol=row.symbol,
        side=domain.Side(row.side),
        volume=row.volume,
        entry_price=row.entry_price,
        received_at=row.received_at,
        opened_at=row.opened_at,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        ticket=row.ticket,
    )


def broker_position_of(row: Row) -> domain.BrokerPosition:
    return domain.BrokerPosition(
        ticket=row.ticket,
        symbol=row.symbol,
        side=domain.Side(row.side),
        volume=row.volume,
        open_price=row.open_price,
        current_price=row.current_price,
        opened_at=row.opened_at,
        profit=row.profit,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        swap=row.swap,
        commission=row.commission,
    )


def reconcile_settings_of(account: Account) -> ReconcileSettings:
    return ReconcileSettings(
        grace_seconds=account.grace_seconds,
        match_window_seconds=account.match_window_seconds,
        entry_slippage_pips=account.entry_slippage_pips,
    )


def _position_findings(result: Reconciliation) -> dict[str, tuple[str | None, str | None]]:
    """ticket → (matched trade id, divergence reasons) for every position the broker holds."""
    findings: dict[str, tuple[str | None, str | None]] = {}
    for pair in result.matches:
        reasons = ",".join(reason.value for reason in pair.reasons) or None
        findings[pair.position.ticket] = (pair.trade.trade_id, reasons)
    for position in result.unexpected:
        findings[position.ticket] = (None, "unexpected_on_broker")
    return findings


async def _store_positions(
    session: AsyncSession,
    account_id: int,
    positions: list[domain.BrokerPosition],
    stored: dict[str, Row],
    result: Reconciliation,
    taken_at: datetime,
) -> None:
    findings = _position_findings(result)
    held = {position.ticket for position in positions}
    gone = [row.id for ticket, row in stored.items() if ticket not in held]
    if gone:
        await session.execute(delete(_positions).where(_positions.c.id.in_(gone)))
    new_rows = []
    updated_rows = []
    for position in positions:
        matched_trade_id, divergence = findings.get(position.ticket, (None, None))
        fields = {
            "symbol": position.symbol,
            "side": position.side.value,
            "volume": position.volume,
            "open_price": position.open_price,
            "current_price": position.current_price,
            "stop_loss": position.stop_loss,
            "take_profit": position.take_profit,
            "profit": position.profit,
            "swap": position.swap,
            "commission": position.commission,
            "opened_at": position.opened_at,
            "last_updated_at": taken_at,
            "matched_trade_id": matched_trade_id,
            "divergence": divergence,
        }
        row = stored.get(position.ticket)
        if row is None:
            new_rows.append({"account_id": account_id, "ticket": position.ticket, **fields})
        else:
            updated_rows.append({"row_id": row.id, **fields})
    if new_rows:
        await session.execute(_INSERT_POSITIONS, new_rows)
    if updated_rows:
        await session.execute(_UPDATE_POSITION, updated_rows)


async def _close_expected_trades(
    session: AsyncSession, open_trades: list[Row], result: Reconciliation, taken_at: datetime
) -> None:
    """A matched position that left the broker (SL, TP, stop-out, manual close) closes its trade."""
    closed_trade_ids = {closed.trade_id for closed in result.closed if closed.trade_id}
    closed_rows = [trade.id for trade in open_trades if trade.trade_id in closed_trade_ids]
    if closed_rows:
        await session.execute(
            update(_trades).where(_trades.c.id.in_(closed_rows)).values(status="closed", closed_at=taken_at)
        )


def _divergence_rows(result: Reconciliation) -> list[dict]:
    return [
        {
            "trade_id": divergence.trade_id,
            "ticket": divergence.ticket,
            "reason": reason.value,
            "symbol": divergence.symbol,
            "message": divergence.message,
        }
        for divergence in result.divergences
        for reason in divergence.reasons
    ]


def _divergence_rows_json(result: Reconciliation) -> str:
    return orjson.dumps(_divergence_rows(result)).decode()


def _row_key(row: dict) -> tuple:
    return row["trade_id"], row["ticket"], row["reason"]


def _log_changes(
    session: AsyncSession,
    account_id: int,
    state: AccountState,
    stored: dict[str, Row],
    result: Reconciliation,
    at: datetime,
) -> None:
    """Append only what changed since the previous sync: new matches, new or resolved divergences, closes."""

    def log(event_type: str, message: str, **fields) -> None:
        audit_event(session, account_id, event_type, message, at=at, **fields)

    previously_matched = {
        (row.matched_trade_id, row.ticket) for row in stored.values() if row.matched_trade_id
    }
    for pair in result.matches:
        if (pair.trade.trade_id, pair.position.ticket) not in previously_matched:
            log(
                "matched",
                f"trade {pair.trade.trade_id} matched broker ticket {pair.position.ticket}",
                symbol=pair.position.symbol,
                ticket=pair.position.ticket,
                trade_id=pair.trade.trade_id,
            )

    before = {_row_key(row): row for row in orjson.loads(state.open_divergences)}
    now = {_row_key(row): row for row in _divergence_rows(result)}
    for key, row in now.items():
        if key not in before:
            log("divergence", row["message"], **_event_fields(row))
    closed_tickets = {closed.ticket for closed in result.closed}
    for key, row in before.items():
        if key not in now and row["ticket"] not in closed_tickets:
            log("resolved", f"resolved: {row['message']}", **_event_fields(row))

    log_closes(session, account_id, result, at)


def _event_fields(row: dict) -> dict:
    return {
        "reason": row["reason"],
        "symbol": row["symbol"],
        "ticket": row["ticket"],
        "trade_id": row["trade_id"],
    }
