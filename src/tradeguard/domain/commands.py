"""A close command's lifecycle: where it stands, what can happen to it, and what it becomes.

A command is born `pending`; its first delivery (in an ingest answer or a poll) makes it `sent`
and starts its time-out; the bridge's acknowledgement says `executed`, `failed` or `unknown`; a
`sent` command nobody acknowledges in time `expired`s; a re-arm `cancelled`s the drawdown's live
ones. The broker's snapshot has the last word: a position it no longer holds is closed, whatever
the bridge said, and a position it still holds after the bridge said `executed` (or lost the
outcome) was not.

A late acknowledgement, one that comes after the command expired or was cancelled, is taken as
a timely one would have been: the bridge cannot be told to give a command back, so the broker
may really have closed the position, and the next snapshot settles it like any other.
`executed` then awaits the snapshot's confirmation, `failed` is final, and `unknown` leaves the
outcome to the snapshot.

Where a command stands is its stored state plus two facts the state alone does not say: the
bridge lost the outcome (`outcome_unknown`), and a snapshot confirmed the close (`confirmed`).
`TRANSITIONS` is the one table of what each event does from each standing; every other pair
is an `InvalidTransition`, and which standings are live, deliverable, settled by a snapshot or
terminal is read off the table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class CommandState(enum.StrEnum):
    """The stored state: the values are what the database and the API's answers hold."""

    PENDING = "pending"
    SENT = "sent"
    EXECUTED = "executed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class CommandEvent(enum.Enum):
    DELIVERED = "delivered"
    ACKNOWLEDGED_EXECUTED = "acknowledged executed"
    ACKNOWLEDGED_FAILED = "acknowledged failed"
    ACKNOWLEDGED_UNKNOWN = "acknowledged unknown"
    TIMED_OUT = "timed out"
    POSITION_GONE = "a snapshot no longer holds the position"
    POSITION_HELD = "a snapshot still holds the position"
    REARMED = "the account was re-armed"


class AckStatus(enum.StrEnum):
    """What a bridge may acknowledge."""

    EXECUTED = "executed"
    FAILED = "failed"
    UNKNOWN = "unknown"


ACKNOWLEDGED = {
    AckStatus.EXECUTED: CommandEvent.ACKNOWLEDGED_EXECUTED,
    AckStatus.FAILED: CommandEvent.ACKNOWLEDGED_FAILED,
    AckStatus.UNKNOWN: CommandEvent.ACKNOWLEDGED_UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class Standing:
    state: CommandState
    outcome_unknown: bool = False
    confirmed: bool = False

    def __str__(self) -> str:
        flags = ["outcome unknown"] * self.outcome_unknown + ["confirmed"] * self.confirmed
        return self.state.value + (f" ({', '.join(flags)})" if flags else "")


PENDING = Standing(CommandState.PENDING)
PENDING_OUTCOME_UNKNOWN = Standing(CommandState.PENDING, outcome_unknown=True)
SENT = Standing(CommandState.SENT)
SENT_OUTCOME_UNKNOWN = Standing(CommandState.SENT, outcome_unknown=True)
EXECUTED_UNCONFIRMED = Standing(CommandState.EXECUTED)
CONFIRMED = Standing(CommandState.EXECUTED, confirmed=True)
FAILED = Standing(CommandState.FAILED)
EXPIRED = Standing(CommandState.EXPIRED)
EXPIRED_OUTCOME_UNKNOWN = Standing(CommandState.EXPIRED, outcome_unknown=True)
CANCELLED = Standing(CommandState.CANCELLED)
CANCELLED_OUTCOME_UNKNOWN = Standing(CommandState.CANCELLED, outcome_unknown=True)

# Waiting for the snapshot's word, a command hears nothing else: the bridge has spoken (a second
# acknowledgement is answered from the first, `take_acknowledgement`), and it is neither delivered,
# timed out nor cancelled, since it may have closed the position.
_SETTLED_BY_THE_SNAPSHOT = {CommandEvent.POSITION_GONE: CONFIRMED, CommandEvent.POSITION_HELD: FAILED}
TRANSITIONS: Mapping[Standing, Mapping[CommandEvent, Standing]] = {
    PENDING: {
        CommandEvent.DELIVERED: SENT,
        CommandEvent.ACKNOWLEDGED_EXECUTED: EXECUTED_UNCONFIRMED,
        CommandEvent.ACKNOWLEDGED_FAILED: FAILED,
        CommandEvent.ACKNOWLEDGED_UNKNOWN: PENDING_OUTCOME_UNKNOWN,
        CommandEvent.POSITION_GONE: CONFIRMED,
        CommandEvent.POSITION_HELD: PENDING,
        CommandEvent.REARMED: CANCELLED,
    },
    SENT: {
        CommandEvent.DELIVERED: SENT,
        CommandEvent.ACKNOWLEDGED_EXECUTED: EXECUTED_UNCONFIRMED,
        CommandEvent.ACKNOWLEDGED_FAILED: FAILED,
        CommandEvent.ACKNOWLEDGED_UNKNOWN: SENT_OUTCOME_UNKNOWN,
        CommandEvent.TIMED_OUT: EXPIRED,
        CommandEvent.POSITION_GONE: CONFIRMED,
        CommandEvent.POSITION_HELD: SENT,
        CommandEvent.REARMED: CANCELLED,
    },
    PENDING_OUTCOME_UNKNOWN: _SETTLED_BY_THE_SNAPSHOT,
    SENT_OUTCOME_UNKNOWN: _SETTLED_BY_THE_SNAPSHOT,
    EXECUTED_UNCONFIRMED: _SETTLED_BY_THE_SNAPSHOT,
    # Neither expired nor cancelled commands are closes of their own any more: a position that
    # leaves the broker is not credited to them unless the bridge says it carried them out.
    EXPIRED: {
        CommandEvent.ACKNOWLEDGED_EXECUTED: EXECUTED_UNCONFIRMED,
        CommandEvent.ACKNOWLEDGED_FAILED: FAILED,
        CommandEvent.ACKNOWLEDGED_UNKNOWN: EXPIRED_OUTCOME_UNKNOWN,
    },
    EXPIRED_OUTCOME_UNKNOWN: _SETTLED_BY_THE_SNAPSHOT,
    CANCELLED: {
        CommandEvent.ACKNOWLEDGED_EXECUTED: EXECUTED_UNCONFIRMED,
        CommandEvent.ACKNOWLEDGED_FAILED: FAILED,
        CommandEvent.ACKNOWLEDGED_UNKNOWN: CANCELLED_OUTCOME_UNKNOWN,
    },
    CANCELLED_OUTCOME_UNKNOWN: _SETTLED_BY_THE_SNAPSHOT,
    CONFIRMED: {},
    FAILED: {},
}


class InvalidTransition(ValueError):
    def __init__(self, standing: Standing, event: CommandEvent) -> None:
        super().__init__(f"a close command {standing} cannot be {event.value!r}")
        self.standing = standing
        self.event = event


def next_state(standing: Standing, event: CommandEvent) -> Standing:
    try:
        return TRANSITIONS[standing][event]
    except KeyError:
        raise InvalidTransition(standing, event) from None


def _standings_where(event: CommandEvent) -> frozenset[Standing]:
    return frozenset(standing for standing, moves in TRANSITIONS.items() if event in moves)


TERMINAL = frozenset(standing for standing, moves in TRANSITIONS.items() if not moves)
DELIVERABLE = _standings_where(CommandEvent.DELIVERED)
"""What a bridge is still handed: in every ingest answer and poll until it acknowledges."""
CANCELLABLE = _standings_where(CommandEvent.REARMED)
TIMES_OUT = _standings_where(CommandEvent.TIMED_OUT)
SETTLED_BY_SNAPSHOT = _standings_where(CommandEvent.POSITION_GONE)
LIVE_STATES = tuple(sorted({standing.state for standing in DELIVERABLE}, key=list(CommandState).index))
"""The states a bridge may still carry out: one command per position and cause among them."""


def take_acknowledgement(standing: Standing, status: AckStatus, earlier: AckStatus | None) -> Standing | None:
    """Where the bridge's word takes the command, or None when it changes nothing.

    The same word again changes nothing (bridges acknowledge again when a command comes again);
    a word contradicting the earlier one raises `ContradictingAcknowledgement`. A word that comes
    after the snapshot settled the command changes nothing either: the snapshot is the truth.
    """
    if earlier is not None:
        if earlier == status:
            return None
        raise ContradictingAcknowledgement(earlier)
    if standing in TERMINAL:
        return None
    return next_state(standing, ACKNOWLEDGED[status])


class ContradictingAcknowledgement(ValueError):
    def __init__(self, earlier: AckStatus) -> None:
        super().__init__(f"already acknowledged as {earlier.value}")
        self.earlier = earlier


def next_attempt(earlier_attempts: int, max_attempts: int) -> int | None:
    """The attempt number of a new command for a position and cause, or None when none may be issued.

    Every earlier command counts, whatever became of it (a cancelled one too), so a position
    gets at most `max_attempts` commands per cause.
    """
    if earlier_attempts < 0 or max_attempts < 1:
        raise ValueError(f"attempts {earlier_attempts} of at most {max_attempts}")
    return earlier_attempts + 1 if earlier_attempts < max_attempts else None
