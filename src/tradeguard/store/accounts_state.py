"""An account's state as each sync reads and writes it: the state row, locked, the positions the broker
held, the open expected trades, the equity history.

Every snapshot runs these statements, so they are Core statements built once: ORM loading and the
unit of work cost several times the round trip itself. The account and its state are built as ORM
objects outside the session, so that the guards and the answer read them as before, and the state
goes back in one UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    any_,
    bindparam,
    delete,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.domain import model as domain
from tradeguard.domain.positions import MARKET_FIELDS, moved_with_the_market_only
from tradeguard.domain.reconcile import DivergenceReason, PreviousSnapshot
from tradeguard.domain.sync import HeldPosition, OpenDivergence, PreviousSync
from tradeguard.store.models import (
    Account,
    AccountSnapshot,
    AccountState,
    BrokerPosition,
    Device,
    ExpectedTrade,
)

_states = AccountState.__table__
_accounts = Account.__table__
_positions = BrokerPosition.__table__
_trades = ExpectedTrade.__table__
_snapshots = AccountSnapshot.__table__
_devices = Device.__table__

# Joined with the device, so that the lock also refuses a device revoked since the process
# remembered it, without a statement of its own.
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


def _one_of(column: ColumnElement, name: str, dialect: str) -> ColumnElement[bool]:
    """`column` among the values bound as `name`: on PostgreSQL one array, so that one prepared
    statement serves batches of every size; elsewhere an IN list."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


_DIALECTS = ("postgresql", "sqlite")
# A batch's states in one statement, in account order, so that two processes locking overlapping
# batches take the rows in the same order and never deadlock. A device appears once per row, so an
# account with two devices in the batch comes twice.
_LOCKED_STATES = {
    dialect: select(_devices.c.device_id, *_states.c, *_accounts.c)
    .join_from(_states, _accounts, _accounts.c.id == _states.c.account_id)
    .join(_devices, _devices.c.account_id == _states.c.account_id)
    .where(_one_of(_devices.c.device_id, "device_ids", dialect), _devices.c.revoked_at.is_(None))
    .order_by(_states.c.account_id)
    .with_for_update(of=_states)
    for dialect in _DIALECTS
}
_STATE_KEYS = tuple(_states.c.keys())
_ACCOUNT_KEYS = tuple(_accounts.c.keys())
# Where a row of `_LOCKED_STATES` says which account it is.
_LOCKED_ACCOUNT_ID = 1 + _STATE_KEYS.index("account_id")
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
_INSERT_POSITIONS = insert(_positions)
# What a sync reads of each stored position, in the order `_stored_position_of` unpacks it.
_STORED_POSITION_COLUMNS = tuple(
    _positions.c[name]
    for name in (
        "id",
        "matched_trade_id",
        "divergence",
        "ticket",
        "symbol",
        "side",
        "volume",
        "open_price",
        "current_price",
        "opened_at",
        "profit",
        "stop_loss",
        "take_profit",
        "swap",
        "commission",
        "magic",
        "comment",
    )
)
# Its SET clause is the keys of the rows given: a position that only moved with the market sets
# those columns alone, what it was opened as and what the sync found of it staying as stored.
_UPDATE_POSITION = update(_positions).where(_positions.c.id == bindparam("row_id"))
# In the order `_open_trade_of` unpacks them.
_OPEN_TRADE_COLUMNS = (
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
    _trades.c.signal_id,
)
_OPEN_TRADES = select(*_OPEN_TRADE_COLUMNS).where(
    _trades.c.account_id == bindparam("account_id"), _trades.c.status == "open"
)
_OPEN_TRADES_OF_ACCOUNTS = {
    dialect: select(_trades.c.account_id, *_OPEN_TRADE_COLUMNS)
    .where(_one_of(_trades.c.account_id, "account_ids", dialect), _trades.c.status == "open")
    .order_by(_trades.c.account_id, _trades.c.id)
    for dialect in _DIALECTS
}


async def lock_state(
    session: AsyncSession, account_id: int, device_id: str
) -> tuple[Account, AccountState] | None:
    """The account and its state, the state's row locked; None when the device is unknown or revoked."""
    row = (await session.execute(_LOCKED_STATE, {"account_id": account_id, "device_id": device_id})).first()
    if row is None:
        return None
    split = len(_STATE_KEYS)
    return (
        Account(**dict(zip(_ACCOUNT_KEYS, row[split:], strict=True))),
        AccountState(**dict(zip(_STATE_KEYS, row[:split], strict=True))),
    )


async def lock_states(
    session: AsyncSession, device_ids: Iterable[str]
) -> dict[str, tuple[Account, AccountState]]:
    """By device, its account and the account's state, the states' rows locked; a device unknown or
    revoked is missing. Devices of one account share one account and one state."""
    statement = _LOCKED_STATES[session.bind.dialect.name]
    rows = (await session.execute(statement, {"device_ids": sorted(set(device_ids))})).all()
    split = 1 + len(_STATE_KEYS)
    by_account: dict[int, tuple[Account, AccountState]] = {}
    by_device = {}
    for row in rows:
        pair = by_account.get(row[_LOCKED_ACCOUNT_ID])
        if pair is None:
            state = AccountState(**dict(zip(_STATE_KEYS, row[1:split], strict=True)))
            pair = (Account(**dict(zip(_ACCOUNT_KEYS, row[split:], strict=True))), state)
            by_account[state.account_id] = pair
        by_device[row[0]] = pair
    return by_device


def copy_of_state(state: AccountState) -> AccountState:
    """The state's values as they are now, apart from the object that goes on being written."""
    return AccountState(**{key: getattr(state, key) for key in _STATE_KEYS})


@dataclass
class PendingWrites:
    """The position and state UPDATEs of several syncs in one transaction, held back to be sent
    together (`write_pending`): one statement each for all of them instead of two per sync. Nothing
    may read an account's positions or state while its writes are pending."""

    positions: list[dict] = field(default_factory=list)
    moved_positions: list[dict] = field(default_factory=list)
    states: list[dict] = field(default_factory=list)
    accounts: set[int] = field(default_factory=set)


async def write_pending(session: AsyncSession, pending: PendingWrites) -> None:
    await _write_positions(session, pending.positions, pending.moved_positions)
    if pending.states:
        await _write_states(session, pending.states)
    pending.positions, pending.moved_positions, pending.states = [], [], []
    pending.accounts.clear()


async def store_state_and_equity(
    session: AsyncSession, state: AccountState, pending: PendingWrites | None = None
) -> None:
    """The state's one UPDATE, and the equity history's row; held in `pending` if given."""
    values = {f"new_{key}": getattr(state, key) for key in _STATE_WRITTEN}
    values["key_account_id"] = state.account_id
    if pending is None:
        await _write_states(session, [values])
    else:
        pending.states.append(values)
        pending.accounts.add(state.account_id)


async def _write_states(session: AsyncSession, values: list[dict]) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(_UPDATE_STATE_COPYING_EQUITY, values)
    else:
        await session.execute(_UPDATE_STATE, values)
        await session.execute(
            _COPY_STATE_TO_EQUITY, [{"key_account_id": row["key_account_id"]} for row in values]
        )


def positions_with(answer: ColumnElement) -> Select:
    """A statement reading an account's stored positions with `answer` in every row (bound to the
    same `account_id`), saving the statement `answer` would need of its own. The outer join from
    one row answers it for an account that holds no position too."""
    return select(answer.label("answer"), *_STORED_POSITION_COLUMNS).select_from(
        select(literal_column("1"))
        .subquery("one")
        .outerjoin(_positions, _positions.c.account_id == bindparam("account_id"))
    )


async def read_positions_with(
    session: AsyncSession, statement: Select, account_id: int
) -> tuple[object, dict[str, StoredPosition]]:
    """`statement` from `positions_with`: its answer, and the stored positions by ticket."""
    rows = (await session.execute(statement, {"account_id": account_id})).all()
    stored = (_stored_position_of(row[1:]) for row in rows if row[1] is not None)
    return rows[0][0], {position.position.ticket: position for position in stored}


async def store_positions(
    session: AsyncSession,
    account_id: int,
    stored: Mapping[str, StoredPosition],
    held: Sequence[HeldPosition],
    gone_tickets: Iterable[str],
    taken_at: datetime,
    pending: PendingWrites | None = None,
) -> None:
    """The positions as the snapshot holds them: those gone deleted, the others updated (in
    `pending` if given) or added."""
    gone = [stored[ticket].row_id for ticket in gone_tickets]
    if gone:
        await session.execute(delete(_positions).where(_positions.c.id.in_(gone)))
    new_rows = []
    updated_rows = []
    moved_rows = []
    for finding in held:
        position = finding.position
        row = stored.get(position.ticket)
        divergence = ",".join(reason.value for reason in finding.divergence_reasons) or None
        if (
            row is not None
            and (row.matched_trade_id, row.divergence) == (finding.matched_trade_id, divergence)
            and moved_with_the_market_only(row.position, position)
        ):
            moved_rows.append(
                {
                    "row_id": row.row_id,
                    **{name: getattr(position, name) for name in MARKET_FIELDS},
                    "last_updated_at": taken_at,
                }
            )
            continue
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
            "magic": position.magic,
            "comment": position.comment,
            "opened_at": position.opened_at,
            "last_updated_at": taken_at,
            "matched_trade_id": finding.matched_trade_id,
            "divergence": divergence,
        }
        if row is None:
            new_rows.append({"account_id": account_id, "ticket": position.ticket, **fields})
        else:
            updated_rows.append({"row_id": row.row_id, **fields})
    if new_rows:
        await session.execute(_INSERT_POSITIONS, new_rows)
    if pending is None:
        await _write_positions(session, updated_rows, moved_rows)
    elif updated_rows or moved_rows:
        pending.positions += updated_rows
        pending.moved_positions += moved_rows
        pending.accounts.add(account_id)


async def _write_positions(session: AsyncSession, updated: list[dict], moved: list[dict]) -> None:
    if updated:
        await session.execute(_UPDATE_POSITION, updated)
    if moved:
        await session.execute(_UPDATE_POSITION, moved)


@dataclass(frozen=True, slots=True)
class StoredPosition:
    """A position as the previous sync stored it: its row, and what that sync found of it."""

    row_id: int
    matched_trade_id: str | None
    divergence: str | None
    """the divergence reasons, comma-separated"""
    position: domain.BrokerPosition


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """An open expected trade and its row."""

    row_id: int
    trade: domain.ExpectedTrade


@dataclass(frozen=True, slots=True)
class StoredRows:
    """What a sync reads of its account before deciding anything."""

    answer: object
    """what the statement from `positions_of_accounts_with` asked along"""
    positions: dict[str, StoredPosition]
    """the stored positions by ticket"""
    open_trades: list[OpenTrade]


def positions_of_accounts_with(answer_of: Callable[[ColumnElement[int]], ColumnElement]) -> dict[str, Select]:
    """As `positions_with`, for the accounts `account_ids` at once (a statement per dialect):
    `answer_of(account)` in every row, each account's row present even when it holds no position."""
    account = _states.c.account_id
    return {
        dialect: select(
            account.label("of_account"), answer_of(account).label("answer"), *_STORED_POSITION_COLUMNS
        )
        .select_from(_states.outerjoin(_positions, _positions.c.account_id == account))
        .where(_one_of(account, "account_ids", dialect))
        .order_by(account, _positions.c.id)
        for dialect in _DIALECTS
    }


async def read_accounts(
    session: AsyncSession, positions: dict[str, Select], account_ids: Iterable[int]
) -> dict[int, StoredRows]:
    """For each account, what `read_positions_with` (of the same answer) and `open_trades` would
    read, in two statements for all of them; `positions` from `positions_of_accounts_with`."""
    dialect = session.bind.dialect.name
    ids = sorted(set(account_ids))
    position_rows = (await session.execute(positions[dialect], {"account_ids": ids})).all()
    trade_rows = (await session.execute(_OPEN_TRADES_OF_ACCOUNTS[dialect], {"account_ids": ids})).all()
    read = {}
    # Rows are read by position: a `Row`'s attribute costs an AttributeError caught inside it.
    for row in position_rows:
        account_id, answer = row[0], row[1]
        stored = read.get(account_id)
        if stored is None:
            stored = read[account_id] = StoredRows(answer, {}, [])
        if row[2] is not None:
            position = _stored_position_of(row[2:])
            stored.positions[position.position.ticket] = position
    for row in trade_rows:
        read[row[0]].open_trades.append(_open_trade_of(row[1:]))
    return read


async def open_trades(session: AsyncSession, account_id: int) -> list[OpenTrade]:
    return [_open_trade_of(row) for row in await session.execute(_OPEN_TRADES, {"account_id": account_id})]


async def close_trades(
    session: AsyncSession, open_trades: Iterable[OpenTrade], trade_ids: frozenset[str], closed_at: datetime
) -> None:
    """The trades among `open_trades` named in `trade_ids` become closed."""
    closed_rows = [open_trade.row_id for open_trade in open_trades if open_trade.trade.trade_id in trade_ids]
    if closed_rows:
        await session.execute(
            update(_trades).where(_trades.c.id.in_(closed_rows)).values(status="closed", closed_at=closed_at)
        )


def previous_sync_of(stored_positions: Mapping[str, StoredPosition], state: AccountState) -> PreviousSync:
    """What the account's stored rows say the previous sync left: what a new sync is compared with."""
    return PreviousSync(
        held=PreviousSnapshot(
            positions=tuple(stored.position for stored in stored_positions.values()),
            trade_id_by_ticket={
                ticket: stored.matched_trade_id
                for ticket, stored in stored_positions.items()
                if stored.matched_trade_id
            },
        ),
        open_divergences=open_divergences_of_json(state.open_divergences),
        feed_stale=state.feed_stale,
    )


def open_divergences_of_json(stored: str) -> tuple[OpenDivergence, ...]:
    return tuple(
        OpenDivergence(
            trade_id=row["trade_id"],
            ticket=row["ticket"],
            reason=DivergenceReason(row["reason"]),
            symbol=row["symbol"],
            message=row["message"],
        )
        for row in orjson.loads(stored)
    )


def open_divergences_json(divergences: Iterable[OpenDivergence]) -> str:
    return orjson.dumps(
        [
            {
                "trade_id": divergence.trade_id,
                "ticket": divergence.ticket,
                "reason": divergence.reason.value,
                "symbol": divergence.symbol,
                "message": divergence.message,
            }
            for divergence in divergences
        ]
    ).decode()


# A stored side was written from a `Side`; looking it up costs a fraction of calling the enum.
_SIDES = {side.value: side for side in domain.Side}


def _open_trade_of(values: Sequence) -> OpenTrade:
    """`values` as `_OPEN_TRADE_COLUMNS` reads them."""
    (
        row_id,
        trade_id,
        symbol,
        side,
        volume,
        entry_price,
        received_at,
        opened_at,
        stop_loss,
        take_profit,
        ticket,
        signal_id,
    ) = values
    return OpenTrade(
        row_id,
        domain.ExpectedTrade(
            trade_id=trade_id,
            symbol=symbol,
            side=_SIDES[side],
            volume=volume,
            entry_price=entry_price,
            received_at=received_at,
            opened_at=opened_at,
            stop_loss=stop_loss,
            take_profit=take_profit,
            ticket=ticket,
            signal_id=signal_id,
        ),
    )


def _stored_position_of(values: Sequence) -> StoredPosition:
    """`values` as `_STORED_POSITION_COLUMNS` reads them."""
    (
        row_id,
        matched_trade_id,
        divergence,
        ticket,
        symbol,
        side,
        volume,
        open_price,
        current_price,
        opened_at,
        profit,
        stop_loss,
        take_profit,
        swap,
        commission,
        magic,
        comment,
    ) = values
    return StoredPosition(
        row_id,
        matched_trade_id,
        divergence,
        domain.BrokerPosition(
            ticket=ticket,
            symbol=symbol,
            side=_SIDES[side],
            volume=volume,
            open_price=open_price,
            current_price=current_price,
            opened_at=opened_at,
            profit=profit,
            stop_loss=stop_loss,
            take_profit=take_profit,
            swap=swap,
            commission=commission,
            magic=magic,
            comment=comment,
        ),
    )
