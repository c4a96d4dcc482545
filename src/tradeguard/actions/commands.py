"""Close commands: born from guard decisions, delivered to the bridge, settled by the broker's snapshot.

What each event makes of a command is decided in `tradeguard.domain.commands`; here commands are
loaded, the domain is asked, and its answer is stored and audited. The database allows one live
command per position and cause.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Exists, and_, bindparam, case, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.audit import audit_event
from tradeguard.domain.commands import (
    CANCELLABLE,
    DELIVERABLE,
    LIVE_STATES,
    PENDING,
    SETTLED_BY_SNAPSHOT,
    TIMES_OUT,
    AckStatus,
    CommandEvent,
    CommandState,
    ContradictingAcknowledgement,
    Standing,
    next_attempt,
    next_state,
    take_acknowledgement,
)
from tradeguard.domain.model import BrokerPosition
from tradeguard.domain.reconcile import ClosedOnBroker, PnlSource
from tradeguard.errors import Conflict, NotFound
from tradeguard.store.models import BrokerPosition as BrokerPositionRow
from tradeguard.store.models import CloseCommand

_LIVE_STATE_VALUES = [state.value for state in LIVE_STATES]


@dataclass(frozen=True, slots=True)
class CloseTarget:
    """What a close command needs of a position."""

    ticket: str
    symbol: str
    volume: Decimal


def targets_of(positions: Iterable[BrokerPosition]) -> list[CloseTarget]:
    return [CloseTarget(position.ticket, position.symbol, position.volume) for position in positions]


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    status: str
    detail: str | None = None
    close_price: Decimal | None = None
    profit: Decimal | None = None


def standing_of(command: CloseCommand) -> Standing:
    return Standing(CommandState(command.state), command.outcome_unknown, command.confirmed_at is not None)


def _move(command: CloseCommand, event: CommandEvent, now: datetime) -> Standing | None:
    """Store where the event takes the command; None when it stays where it was."""
    before = standing_of(command)
    after = next_state(before, event)
    if after == before:
        return None
    _store(command, after, now)
    return after


def _store(command: CloseCommand, standing: Standing, now: datetime) -> None:
    command.state = standing.state.value
    command.outcome_unknown = standing.outcome_unknown
    if standing.confirmed and command.confirmed_at is None:
        command.confirmed_at = now
    if standing not in TIMES_OUT:
        command.expires_at = None
    command.updated_at = now


def _standing_among(columns, standings: Set[Standing]) -> ColumnElement[bool]:
    """The rows whose standing is one of these, as SQL over the columns that make a standing."""
    states_by_flags: dict[tuple[bool, bool], list[str]] = defaultdict(list)
    for standing in sorted(standings, key=lambda standing: list(CommandState).index(standing.state)):
        states_by_flags[standing.outcome_unknown, standing.confirmed].append(standing.state.value)
    return or_(
        *(
            and_(
                columns.state.in_(states),
                columns.outcome_unknown.is_(outcome_unknown),
                columns.confirmed_at.is_not(None) if confirmed else columns.confirmed_at.is_(None),
            )
            for (outcome_unknown, confirmed), states in sorted(states_by_flags.items())
        )
    )


def audit(
    session: AsyncSession, command: CloseCommand, event_type: str, message: str, at: datetime, **details
) -> None:
    audit_event(
        session,
        command.account_id,
        event_type,
        message,
        at=at,
        reason=command.cause,
        symbol=command.symbol,
        ticket=command.ticket,
        details={"command_id": command.id, **details},
    )


# Built once: it runs for every breach.
_ATTEMPTS_BY_TICKET = (
    select(
        CloseCommand.ticket,
        func.count(),
        func.sum(case((CloseCommand.state.in_(_LIVE_STATE_VALUES), 1), else_=0)),
    )
    .where(
        CloseCommand.account_id == bindparam("account_id"),
        CloseCommand.cause == bindparam("cause"),
        CloseCommand.ticket.in_(bindparam("tickets", expanding=True)),
    )
    .group_by(CloseCommand.ticket)
)


async def issue_close_commands(
    session: AsyncSession,
    account_id: int,
    targets: Iterable[CloseTarget],
    *,
    cause: str,
    now: datetime,
    max_attempts: int,
    delivered_with_timeout: timedelta | None = None,
    audited: Mapping[str, Any] = MappingProxyType({}),
) -> list[CloseCommand]:
    """One command per position unless one is already live for it and this cause.

    Positions that already had `max_attempts` commands for this cause get no new one. With
    `delivered_with_timeout`, the commands go out in the answer being built (an ingest's): they
    are born delivered with their time-out started, both steps audited, in one write. `audited`
    adds to each new command's first audit entry (who asked for it).
    """
    targets = list(targets)
    if not targets:
        return []
    tickets = [target.ticket for target in targets]
    history = (
        await session.execute(
            _ATTEMPTS_BY_TICKET, {"account_id": account_id, "cause": cause, "tickets": tickets}
        )
    ).all()
    attempts_by_ticket = {ticket: attempts for ticket, attempts, _ in history}
    live = {ticket for ticket, _, live_count in history if live_count}
    attempts = {
        target.ticket: next_attempt(attempts_by_ticket.get(target.ticket, 0), max_attempts)
        for target in targets
        if target.ticket not in live
    }
    delivered = delivered_with_timeout is not None
    born = next_state(PENDING, CommandEvent.DELIVERED) if delivered else PENDING
    rows = [
        {
            "id": str(uuid.uuid4()),
            "account_id": account_id,
            "ticket": target.ticket,
            "symbol": target.symbol,
            "volume": target.volume,
            "cause": cause,
            "state": born.state.value,
            "attempts": attempts[target.ticket],
            "outcome_unknown": born.outcome_unknown,
            "created_at": now,
            "updated_at": now,
            "sent_at": now if delivered else None,
            "expires_at": now + delivered_with_timeout if delivered else None,
        }
        for target in targets
        if attempts.get(target.ticket) is not None
    ]
    if not rows:
        return []
    commands = await _insert_unless_live(session, rows)
    for command in commands:
        audit(
            session,
            command,
            "close_command",
            f"close {command.symbol} {command.volume} (ticket {command.ticket}): {command.cause}, "
            f"attempt {command.attempts}",
            now,
            state=PENDING.state.value,
            **audited,
        )
    if delivered:
        for command in commands:
            _audit_sent(session, command, now)
    return commands


async def _insert_unless_live(session: AsyncSession, rows: list[dict]) -> list[CloseCommand]:
    # The partial unique index decides between concurrent ingests: the loser inserts nothing.
    # The rows go as parameters of one statement, not as its VALUES, so that it compiles once.
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(CloseCommand).on_conflict_do_nothing().returning(CloseCommand)
    commands = list((await session.scalars(statement, rows)).all())
    return sorted(commands, key=lambda command: (command.ticket, command.id))


def deliverable(commands: Iterable[CloseCommand]) -> list[CloseCommand]:
    """Of commands already loaded, those a bridge should still be told about (as `live_commands` selects)."""
    return [command for command in commands if standing_of(command) in DELIVERABLE]


async def live_commands(session: AsyncSession, account_id: int) -> list[CloseCommand]:
    query = (
        select(CloseCommand)
        .where(CloseCommand.account_id == account_id, _standing_among(CloseCommand, DELIVERABLE))
        .order_by(CloseCommand.created_at, CloseCommand.ticket, CloseCommand.id)
    )
    return list((await session.scalars(query)).all())


def mark_sent(
    session: AsyncSession, commands: Iterable[CloseCommand], *, now: datetime, timeout: timedelta
) -> None:
    """Delivered (in an ingest answer or a poll): the time-out starts at the first delivery."""
    for command in commands:
        if _move(command, CommandEvent.DELIVERED, now) is not None:
            command.sent_at = now
            command.expires_at = now + timeout
            _audit_sent(session, command, now)


def _audit_sent(session: AsyncSession, command: CloseCommand, now: datetime) -> None:
    audit(
        session,
        command,
        "close_command",
        f"sent to the bridge (ticket {command.ticket})",
        now,
        state=command.state,
    )


async def acknowledge(
    session: AsyncSession,
    account_id: int,
    device_id: str,
    command_id: str,
    ack: Acknowledgement,
    now: datetime,
) -> CloseCommand:
    """Record the bridge's word. Only a device of the command's account may give it."""
    command = await session.scalar(
        select(CloseCommand).where(CloseCommand.id == command_id).with_for_update()
    )
    if command is None or command.account_id != account_id:
        raise NotFound(f"command {command_id} not found")
    earlier = _acknowledged_status(command)
    try:
        after = take_acknowledgement(standing_of(command), AckStatus(ack.status), earlier)
    except ContradictingAcknowledgement as contradiction:
        raise Conflict(
            f"command {command_id} was already acknowledged as {contradiction.earlier.value}"
        ) from None
    if after is None:
        return command
    command.acknowledged_by = device_id
    command.result = orjson.dumps(
        {"status": ack.status, "detail": ack.detail, "close_price": ack.close_price, "profit": ack.profit},
        default=str,
    ).decode()
    _store(command, after, now)
    audit(
        session,
        command,
        "close_command",
        f"bridge reports {ack.status} for ticket {command.ticket}"
        + (f": {ack.detail}" if ack.detail else ""),
        now,
        state=command.state,
        acknowledged=ack.status,
        device_id=device_id,
    )
    return command


async def cancel_live(
    session: AsyncSession, account_id: int, *, cause: str, why: str, now: datetime
) -> list[CloseCommand]:
    """Cancel the account's live commands of this cause: never delivered, expired or retried again.

    A command whose outcome a bridge reported unknown is left to the next snapshot, which knows
    whether the close happened. One already sent may still be in the bridge's hands, so what the
    bridge says of it afterwards is still taken (`acknowledge`), and the snapshot settles it.
    """
    live = (
        await session.scalars(
            select(CloseCommand)
            .where(
                CloseCommand.account_id == account_id,
                CloseCommand.cause == cause,
                _standing_among(CloseCommand, CANCELLABLE),
            )
            .order_by(CloseCommand.created_at, CloseCommand.ticket, CloseCommand.id)
            .with_for_update()
        )
    ).all()
    for command in live:
        was_sent = command.sent_at is not None
        _move(command, CommandEvent.REARMED, now)
        audit(
            session,
            command,
            "close_command",
            f"cancelled (ticket {command.ticket}): {why}"
            + ("; the bridge may already have it" if was_sent else ""),
            now,
            state=command.state,
            was_sent=was_sent,
        )
    return list(live)


def _acknowledged_status(command: CloseCommand) -> AckStatus | None:
    if command.acknowledged_by is None:
        return None
    return AckStatus(orjson.loads(command.result)["status"])


_commands = CloseCommand.__table__


def any_unsettled(account_id: ColumnElement[int]) -> Exists:
    """Whether `unsettled_commands` would find any, as an expression for the caller's own query.

    Every snapshot needs to know and almost every one finds none, so the ingest step asks along
    with a query it runs anyway, and loads the commands only when there are some.
    """
    return exists().where(_commands.c.account_id == account_id, _settled_by_snapshot(_commands.c))


async def unsettled_commands(session: AsyncSession, account_id: int) -> list[CloseCommand]:
    """The account's commands a snapshot may still settle (`SETTLED_BY_SNAPSHOT`)."""
    query = select(CloseCommand).where(
        CloseCommand.account_id == account_id, _settled_by_snapshot(CloseCommand)
    )
    return list((await session.scalars(query)).all())


def _settled_by_snapshot(columns) -> ColumnElement[bool]:
    return _standing_among(columns, SETTLED_BY_SNAPSHOT)


def settle_with_snapshot(
    session: AsyncSession,
    commands: list[CloseCommand],
    held_tickets: set[str],
    closed: Mapping[str, ClosedOnBroker],
    now: datetime,
) -> list[CloseCommand]:
    """The broker's snapshot is the truth: a position it no longer holds is closed.

    `commands` are the account's `unsettled_commands`; returns those confirmed by this snapshot.
    """
    confirmed = []
    for command in commands:
        if command.ticket not in held_tickets:
            _move(command, CommandEvent.POSITION_GONE, now)
            confirmed.append(command)
            _log_position_closed(session, command, closed.get(command.ticket), now)
        elif _move(command, CommandEvent.POSITION_HELD, now) is not None:
            audit(
                session,
                command,
                "close_command",
                f"the broker still holds ticket {command.ticket}; the close did not happen",
                now,
                state=command.state,
            )
    return confirmed


def _log_position_closed(
    session: AsyncSession, command: CloseCommand, closed: ClosedOnBroker | None, now: datetime
) -> None:
    """The P&L the broker's deals realized, else the one the acknowledgement reported, else the last floating one."""
    reported = orjson.loads(command.result or "{}")
    if closed is not None and closed.pnl_source is PnlSource.REALIZED:
        profit, price, source = closed.net_profit, closed.close_price, PnlSource.REALIZED
    elif reported.get("profit") is not None:
        profit, price, source = reported["profit"], reported.get("close_price"), PnlSource.ACKNOWLEDGED
    elif closed is not None:
        profit, price, source = closed.net_profit, closed.last_price, PnlSource.LAST_FLOATING
    else:
        # The previous snapshot did not hold the position either: its closed_on_broker entry has the P&L.
        profit, price, source = None, reported.get("close_price"), None
    audit(
        session,
        command,
        "position_closed",
        f"{command.symbol} ticket {command.ticket} closed ({command.cause}), P&L {profit}",
        now,
        net_profit=profit,
        pnl_source=source,
        last_price=price,
    )


async def expire_overdue(
    session: AsyncSession, *, now: datetime, max_attempts: int, limit: int = 500
) -> tuple[list[CloseCommand], list[CloseCommand]]:
    """Sent, unacknowledged and past the time-out: expire, and retry while the position is still open.

    Returns the expired commands and their retries.

    Rows are claimed with SKIP LOCKED, so two workers never expire or retry the same command.
    """
    overdue = (
        await session.scalars(
            select(CloseCommand)
            .where(_standing_among(CloseCommand, TIMES_OUT), CloseCommand.expires_at < now)
            .order_by(CloseCommand.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    retries: list[CloseCommand] = []
    for command in overdue:
        _move(command, CommandEvent.TIMED_OUT, now)
        audit(
            session,
            command,
            "close_command",
            f"no acknowledgement for ticket {command.ticket}; expired",
            now,
            state=command.state,
        )
    await session.flush()
    # After a storm nobody acknowledged, thousands expire together: their positions are looked up
    # in one statement, and retried per account and cause rather than per command.
    still_open = await _held_positions(session, overdue)
    to_retry: dict[tuple[int, str], list[CloseTarget]] = defaultdict(list)
    for command in overdue:
        if (command.account_id, command.ticket) in still_open:
            to_retry[command.account_id, command.cause].append(
                CloseTarget(command.ticket, command.symbol, command.volume)
            )
    for (account_id, cause), targets in to_retry.items():
        retries += await issue_close_commands(
            session, account_id, targets, cause=cause, now=now, max_attempts=max_attempts
        )
    return list(overdue), retries


async def _held_positions(session: AsyncSession, commands: Iterable[CloseCommand]) -> set[tuple[int, str]]:
    """(account id, ticket) of the commands' positions the broker still held at the last snapshot."""
    commands = list(commands)
    if not commands:
        return set()
    rows = await session.execute(
        select(BrokerPositionRow.account_id, BrokerPositionRow.ticket).where(
            BrokerPositionRow.account_id.in_({command.account_id for command in commands}),
            BrokerPositionRow.ticket.in_({command.ticket for command in commands}),
        )
    )
    wanted = {(command.account_id, command.ticket) for command in commands}
    return {(account_id, ticket) for account_id, ticket in rows} & wanted
