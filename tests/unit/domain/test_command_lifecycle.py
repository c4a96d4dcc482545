"""The close command's lifecycle, without a database: every standing against every event."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.commands import (
    CANCELLABLE,
    CANCELLED,
    CANCELLED_OUTCOME_UNKNOWN,
    CONFIRMED,
    DELIVERABLE,
    EXECUTED_UNCONFIRMED,
    EXPIRED,
    EXPIRED_OUTCOME_UNKNOWN,
    FAILED,
    LIVE_STATES,
    PENDING,
    PENDING_OUTCOME_UNKNOWN,
    SENT,
    SENT_OUTCOME_UNKNOWN,
    SETTLED_BY_SNAPSHOT,
    TERMINAL,
    TIMES_OUT,
    AckStatus,
    CommandEvent,
    CommandState,
    ContradictingAcknowledgement,
    InvalidTransition,
    Standing,
    next_attempt,
    next_state,
    take_acknowledgement,
)

DELIVERED = CommandEvent.DELIVERED
ACK_EXECUTED = CommandEvent.ACKNOWLEDGED_EXECUTED
ACK_FAILED = CommandEvent.ACKNOWLEDGED_FAILED
ACK_UNKNOWN = CommandEvent.ACKNOWLEDGED_UNKNOWN
TIMED_OUT = CommandEvent.TIMED_OUT
GONE = CommandEvent.POSITION_GONE
HELD = CommandEvent.POSITION_HELD
REARMED = CommandEvent.REARMED

# The lifecycle as docs/guards.md tells it, written out pair by pair.
LIFECYCLE = {
    (PENDING, DELIVERED): SENT,
    (PENDING, ACK_EXECUTED): EXECUTED_UNCONFIRMED,
    (PENDING, ACK_FAILED): FAILED,
    (PENDING, ACK_UNKNOWN): PENDING_OUTCOME_UNKNOWN,
    (PENDING, GONE): CONFIRMED,
    (PENDING, HELD): PENDING,
    (PENDING, REARMED): CANCELLED,
    (SENT, DELIVERED): SENT,
    (SENT, ACK_EXECUTED): EXECUTED_UNCONFIRMED,
    (SENT, ACK_FAILED): FAILED,
    (SENT, ACK_UNKNOWN): SENT_OUTCOME_UNKNOWN,
    (SENT, TIMED_OUT): EXPIRED,
    (SENT, GONE): CONFIRMED,
    (SENT, HELD): SENT,
    (SENT, REARMED): CANCELLED,
    (PENDING_OUTCOME_UNKNOWN, GONE): CONFIRMED,
    (PENDING_OUTCOME_UNKNOWN, HELD): FAILED,
    (SENT_OUTCOME_UNKNOWN, GONE): CONFIRMED,
    (SENT_OUTCOME_UNKNOWN, HELD): FAILED,
    (EXECUTED_UNCONFIRMED, GONE): CONFIRMED,
    (EXECUTED_UNCONFIRMED, HELD): FAILED,
    (EXPIRED, ACK_EXECUTED): EXECUTED_UNCONFIRMED,
    (EXPIRED, ACK_FAILED): FAILED,
    (EXPIRED, ACK_UNKNOWN): EXPIRED_OUTCOME_UNKNOWN,
    (EXPIRED_OUTCOME_UNKNOWN, GONE): CONFIRMED,
    (EXPIRED_OUTCOME_UNKNOWN, HELD): FAILED,
    (CANCELLED, ACK_EXECUTED): EXECUTED_UNCONFIRMED,
    (CANCELLED, ACK_FAILED): FAILED,
    (CANCELLED, ACK_UNKNOWN): CANCELLED_OUTCOME_UNKNOWN,
    (CANCELLED_OUTCOME_UNKNOWN, GONE): CONFIRMED,
    (CANCELLED_OUTCOME_UNKNOWN, HELD): FAILED,
}

EVERY_STANDING = [
    Standing(state, outcome_unknown, confirmed)
    for state, outcome_unknown, confirmed in itertools.product(CommandState, (False, True), (False, True))
]
EVERY_PAIR = list(itertools.product(EVERY_STANDING, CommandEvent))


@pytest.mark.parametrize(
    ("standing", "event"), EVERY_PAIR, ids=lambda value: str(getattr(value, "value", value))
)
def test_every_standing_and_event_gives_the_lifecycles_next_standing_or_raises(standing, event):
    if (standing, event) in LIFECYCLE:
        assert next_state(standing, event) == LIFECYCLE[standing, event]
    else:
        with pytest.raises(InvalidTransition) as refused:
            next_state(standing, event)
        assert (refused.value.standing, refused.value.event) == (standing, event)


def test_what_is_live_deliverable_settled_and_terminal_follows_from_the_table():
    assert LIVE_STATES == (CommandState.PENDING, CommandState.SENT)
    assert DELIVERABLE == CANCELLABLE == {PENDING, SENT}
    assert {SENT} == TIMES_OUT
    assert {CONFIRMED, FAILED} == TERMINAL
    assert {
        PENDING,
        SENT,
        PENDING_OUTCOME_UNKNOWN,
        SENT_OUTCOME_UNKNOWN,
        EXECUTED_UNCONFIRMED,
        EXPIRED_OUTCOME_UNKNOWN,
        CANCELLED_OUTCOME_UNKNOWN,
    } == SETTLED_BY_SNAPSHOT


def test_the_stored_states_keep_the_strings_rows_and_answers_hold():
    assert [state.value for state in CommandState] == [
        "pending",
        "sent",
        "executed",
        "failed",
        "expired",
        "cancelled",
    ]


def test_a_late_executed_acknowledgement_of_an_expired_command_waits_for_the_snapshot():
    late = take_acknowledgement(EXPIRED, AckStatus.EXECUTED, earlier=None)

    assert late == EXECUTED_UNCONFIRMED
    assert next_state(late, GONE) == CONFIRMED
    assert next_state(late, HELD) == FAILED


def test_a_late_unknown_acknowledgement_of_an_expired_command_is_settled_by_the_snapshot():
    late = take_acknowledgement(EXPIRED, AckStatus.UNKNOWN, earlier=None)

    assert late == EXPIRED_OUTCOME_UNKNOWN
    assert next_state(late, GONE) == CONFIRMED
    assert next_state(late, HELD) == FAILED


def test_a_position_gone_after_an_unacknowledged_expiry_is_not_the_expired_commands_doing():
    with pytest.raises(InvalidTransition):
        next_state(EXPIRED, GONE)


def test_the_same_acknowledgement_again_changes_nothing_and_a_contradicting_one_raises():
    assert take_acknowledgement(EXECUTED_UNCONFIRMED, AckStatus.EXECUTED, earlier=AckStatus.EXECUTED) is None
    with pytest.raises(ContradictingAcknowledgement) as contradicting:
        take_acknowledgement(EXECUTED_UNCONFIRMED, AckStatus.FAILED, earlier=AckStatus.EXECUTED)
    assert contradicting.value.earlier is AckStatus.EXECUTED


@pytest.mark.parametrize("status", list(AckStatus))
def test_an_acknowledgement_after_the_snapshot_confirmed_the_close_changes_nothing(status):
    assert take_acknowledgement(CONFIRMED, status, earlier=None) is None


@pytest.mark.parametrize(
    ("standing", "status", "expected"),
    [
        (PENDING, AckStatus.UNKNOWN, PENDING_OUTCOME_UNKNOWN),
        (SENT, AckStatus.EXECUTED, EXECUTED_UNCONFIRMED),
        (SENT, AckStatus.FAILED, FAILED),
        (CANCELLED, AckStatus.UNKNOWN, CANCELLED_OUTCOME_UNKNOWN),
    ],
)
def test_a_first_acknowledgement_moves_the_command_as_its_event(standing, status, expected):
    assert take_acknowledgement(standing, status, earlier=None) == expected


def test_attempts_count_up_to_the_maximum_and_no_further():
    assert [next_attempt(earlier, 3) for earlier in range(5)] == [1, 2, 3, None, None]


@pytest.mark.parametrize(("earlier", "max_attempts"), [(-1, 3), (0, 0)])
def test_nonsensical_attempt_counts_raise(earlier, max_attempts):
    with pytest.raises(ValueError):
        next_attempt(earlier, max_attempts)


events = st.lists(st.sampled_from(list(CommandEvent)), max_size=30)


def walk(start: Standing, sequence: list[CommandEvent]) -> list[Standing]:
    """The standings a command passes through, the events it refuses left out."""
    standings = [start]
    for event in sequence:
        try:
            standings.append(next_state(standings[-1], event))
        except InvalidTransition:
            continue
    return standings


@given(events)
def test_from_pending_no_sequence_of_events_leaves_a_terminal_standing(sequence):
    standings = walk(PENDING, sequence)

    reached_terminal = [index for index, standing in enumerate(standings) if standing in TERMINAL]
    if reached_terminal:
        assert set(standings[reached_terminal[0] :]) == {standings[reached_terminal[0]]}
    for event in CommandEvent:
        if standings[-1] in TERMINAL:
            with pytest.raises(InvalidTransition):
                next_state(standings[-1], event)


@given(events)
def test_from_pending_every_standing_reached_is_one_of_the_tables(sequence):
    assert set(walk(PENDING, sequence)) <= {standing for standing, _ in LIFECYCLE} | TERMINAL


@given(events)
def test_an_unknown_outcome_is_only_ever_ended_by_a_snapshot(sequence):
    standings = [PENDING]
    for event in sequence:
        try:
            after = next_state(standings[-1], event)
        except InvalidTransition:
            continue
        if standings[-1].outcome_unknown and after != standings[-1]:
            assert event in (GONE, HELD)
            assert not after.outcome_unknown
        if after.confirmed:
            assert event is GONE and after.state is CommandState.EXECUTED
        standings.append(after)


@given(st.integers(min_value=1, max_value=6), st.lists(events, max_size=10))
def test_a_position_never_gets_more_commands_than_the_maximum_nor_two_live_at_once(max_attempts, lives):
    """Every command of one position and cause hears each round of events; after a round a new one
    is issued when none is live and the position is not confirmed closed, as the guards do."""
    commands: list[tuple[int, Standing]] = [(1, PENDING)]
    for sequence in lives:
        commands = [(attempt, walk(standing, sequence)[-1]) for attempt, standing in commands]
        if any(standing == CONFIRMED or standing.state in LIVE_STATES for _, standing in commands):
            continue
        attempt = next_attempt(len(commands), max_attempts)
        if attempt is not None:
            commands.append((attempt, PENDING))

    assert len(commands) <= max_attempts
    assert [attempt for attempt, _ in commands] == list(range(1, len(commands) + 1))
    assert sum(standing.state in LIVE_STATES for _, standing in commands) <= 1
