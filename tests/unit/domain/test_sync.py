"""What a sync changed: every transition of one divergence, then laws over generated runs of syncs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.instruments import InstrumentTable
from tradeguard.domain.model import BrokerPosition, ExpectedTrade, Side
from tradeguard.domain.reconcile import DivergenceReason, Reconciliation, reconcile
from tradeguard.domain.sync import (
    PreviousSync,
    SyncChanges,
    SyncEvent,
    open_divergences_of,
    reconciled_at,
    sync_changes,
    too_old,
)
from tradeguard.store.accounts_state import open_divergences_json, open_divergences_of_json

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
INSTRUMENTS = InstrumentTable({})
R = DivergenceReason
PRICES = {"EURUSD": Decimal("1.10000"), "USDJPY": Decimal("150.000"), "XAUUSD": Decimal("2300.00")}
# Each trade on its own symbol and side, so that it can pair only with its own ticket's position.
BOOK = [("EURUSD", Side.BUY), ("EURUSD", Side.SELL), ("USDJPY", Side.BUY), ("XAUUSD", Side.SELL)]
VOLUMES = [Decimal("0.10"), Decimal("0.05"), Decimal("0.20")]


def trade(index: int, *, age_seconds: int = 120, names_ticket: bool = True) -> ExpectedTrade:
    symbol, side = BOOK[index]
    return ExpectedTrade(
        trade_id=f"T{index}",
        symbol=symbol,
        side=side,
        volume=Decimal("0.10"),
        entry_price=PRICES[symbol],
        received_at=NOW - timedelta(seconds=age_seconds),
        opened_at=NOW - timedelta(seconds=age_seconds),
        ticket=f"P{index}" if names_ticket else None,
    )


def position(index: int, volume: Decimal = Decimal("0.10"), *, profit: str = "0") -> BrokerPosition:
    symbol, side = BOOK[index % len(BOOK)]
    return BrokerPosition(
        ticket=f"P{index}",
        symbol=symbol,
        side=side,
        volume=volume,
        open_price=PRICES[symbol],
        current_price=PRICES[symbol],
        opened_at=NOW - timedelta(seconds=120),
        profit=Decimal(profit),
    )


def run(expected: list[ExpectedTrade], held: list[BrokerPosition], previous: PreviousSync) -> Reconciliation:
    return reconcile(expected, held, instruments=INSTRUMENTS, now=NOW, previous=previous.held)


def after(result: Reconciliation, changes: SyncChanges, *, feed_stale: bool = False) -> PreviousSync:
    """The account as the shell leaves it for the next sync."""
    return PreviousSync(result.as_previous(), changes.open_divergences, feed_stale)


def sync(
    previous: PreviousSync, expected: list[ExpectedTrade], held: list[BrokerPosition]
) -> tuple[Reconciliation, SyncChanges]:
    result = run(expected, held, previous)
    return result, sync_changes(previous, held, result)


def entries_said(changes: SyncChanges) -> list[tuple[str, str | None, str | None]]:
    return [(entry.event.value, entry.reason, entry.ticket) for entry in changes.entries()]


# One trade T1 naming ticket P1, at two syncs. Before: P1 not held yet (the trade pending), held
# as asked, held at half the volume. Now: held as asked, at half the volume, or gone.
BEFORE = {
    "pending": [],
    "clean": [position(1)],
    "partial": [position(1, Decimal("0.05"))],
}
NOW_HELD = {
    "clean": [position(1)],
    "partial": [position(1, Decimal("0.05"))],
    "gone": [],
}
TRANSITIONS = {
    ("pending", "clean"): [("matched", None, "P1")],
    ("pending", "partial"): [("matched", None, "P1"), ("divergence", "partial_fill", "P1")],
    # Not held before, not now: the trade, no longer within its grace period, is missing.
    ("pending", "gone"): [("divergence", "missing_on_broker", "P1")],
    ("clean", "clean"): [],
    ("clean", "partial"): [("divergence", "partial_fill", "P1")],
    ("clean", "gone"): [],
    ("partial", "clean"): [("resolved", "partial_fill", "P1")],
    ("partial", "partial"): [],
    # The close is the news; the partial fill of a position that closed is not said to be resolved.
    ("partial", "gone"): [],
}


@pytest.mark.parametrize(("before", "now"), sorted(TRANSITIONS))
def test_every_transition_of_one_divergence_logs_what_changed_and_nothing_else(before, now):
    young = [trade(1, age_seconds=10)]
    first, first_changes = sync(PreviousSync(), young, BEFORE[before])
    previous = after(first, first_changes)

    result, changes = sync(previous, [trade(1)], NOW_HELD[now])

    assert entries_said(changes) == TRANSITIONS[(before, now)]
    assert changes.gone_tickets == ({"P1"} if BEFORE[before] and not NOW_HELD[now] else set())
    assert changes.closed_trade_ids == ({"T1"} if BEFORE[before] and not NOW_HELD[now] else set())
    assert [held.position.ticket for held in changes.held] == [p.ticket for p in NOW_HELD[now]]


def test_resolved_and_opened_entries_carry_the_divergence_s_words():
    first, first_changes = sync(PreviousSync(), [trade(1)], [position(1, Decimal("0.05"))])
    [opened] = first_changes.entries()[1:]

    _, changes = sync(after(first, first_changes), [trade(1)], [position(1)])
    [resolved] = changes.entries()

    [divergence] = first.divergences
    assert (opened.event, opened.message, opened.trade_id) == (SyncEvent.DIVERGENCE, divergence.message, "T1")
    assert (resolved.event, resolved.message) == (SyncEvent.RESOLVED, f"resolved: {divergence.message}")
    assert (resolved.reason, resolved.symbol, resolved.ticket, resolved.trade_id) == (
        "partial_fill",
        "EURUSD",
        "P1",
        "T1",
    )


@pytest.mark.parametrize("was_stale", [False, True])
def test_a_feed_resumes_with_the_first_snapshot_after_the_sweep_marked_it_stale(was_stale):
    _, changes = sync(PreviousSync(feed_stale=was_stale), [], [])

    assert changes.feed_resumed is was_stale


def bits(mask: int, count: int) -> list[bool]:
    return [bool(mask >> index & 1) for index in range(count)]


def step_of(expected_mask: int, young_mask: int, naming_mask: int, holdings: int) -> tuple:
    """One snapshot of the account, read from four numbers (drawn so, they are cheap to generate):
    which of the four trades are expected, which are young, which name their ticket; and, in base
    4, each of P0..P4 not held or held at one of three volumes (P4 named by no trade)."""
    young, naming = bits(young_mask, 4), bits(naming_mask, 4)
    expected = [
        trade(index, age_seconds=10 if young[index] else 120, names_ticket=naming[index])
        for index, wanted in enumerate(bits(expected_mask, 4))
        if wanted
    ]
    held = []
    for index in range(5):
        held_as = holdings // 4**index % 4
        if held_as:
            held.append(position(index, VOLUMES[held_as - 1]))
    return expected, held


steps_of_an_account = st.builds(
    step_of, st.integers(0, 15), st.integers(0, 15), st.integers(0, 15), st.integers(0, 4**5 - 1)
)
# Two to five snapshots of one account, each drawn afresh, so that pairs form, differ and close.
runs_of_syncs = st.lists(steps_of_an_account, min_size=2, max_size=5)


def play(steps) -> list[tuple[PreviousSync, list[BrokerPosition], Reconciliation, SyncChanges]]:
    """The syncs as the shell runs them: a trade whose position closed is no longer expected."""
    previous, closed_trade_ids, played = PreviousSync(), set(), []
    for expected, held in steps:
        still_open = [trade for trade in expected if trade.trade_id not in closed_trade_ids]
        result, changes = sync(previous, still_open, held)
        played.append((previous, held, result, changes))
        closed_trade_ids |= changes.closed_trade_ids
        previous = after(result, changes)
    return played


def keys(divergences) -> set:
    return {divergence.key for divergence in divergences}


@given(runs_of_syncs)
def test_the_first_sync_opens_every_divergence_and_announces_every_match(steps):
    [(_, held, result, changes)] = play(steps[:1])

    assert changes.new_matches == result.matches
    assert changes.opened == open_divergences_of(result)
    assert changes.resolved == ()
    assert changes.gone_tickets == frozenset()


@given(runs_of_syncs)
def test_the_same_snapshot_again_logs_nothing(steps):
    expected, held = steps[0]
    first, first_changes = sync(PreviousSync(), expected, held)

    result, changes = sync(after(first, first_changes), expected, held)

    assert changes.entries() == ()
    assert changes.open_divergences == first_changes.open_divergences
    assert (changes.gone_tickets, changes.closed_trade_ids) == (frozenset(), frozenset())
    assert result.closed == ()


@given(runs_of_syncs)
def test_a_reader_of_the_log_knows_which_divergences_are_open_after_every_sync(steps):
    """Divergences opened, minus those resolved, minus those whose position closed: the state's own list."""
    told: set = set()
    for _, _, result, changes in play(steps):
        closed_tickets = {closed.ticket for closed in result.closed}
        told = {key for key in told if key[1] not in closed_tickets} - keys(changes.resolved)
        assert not told & keys(changes.opened), "a divergence opened twice without being resolved"
        told |= keys(changes.opened)
        assert told == keys(changes.open_divergences)


@given(runs_of_syncs)
def test_a_pair_is_announced_once_when_it_forms_and_again_only_if_it_formed_anew(steps):
    previous_pairs: set = set()
    for _, _, result, changes in play(steps):
        pairs = {(pair.trade.trade_id, pair.position.ticket) for pair in result.matches}
        announced = [(pair.trade.trade_id, pair.position.ticket) for pair in changes.new_matches]
        assert sorted(announced) == sorted(pairs - previous_pairs)
        previous_pairs = pairs


@given(runs_of_syncs)
def test_what_is_stored_of_each_position_is_what_reconciliation_found(steps):
    for previous, held, result, changes in play(steps):
        assert [finding.position for finding in changes.held] == held
        trade_by_ticket = result.trade_id_by_ticket()
        reasons_by_ticket = {pair.position.ticket: pair.reasons for pair in result.matches}
        for finding in changes.held:
            ticket = finding.position.ticket
            assert finding.matched_trade_id == trade_by_ticket.get(ticket)
            assert finding.divergence_reasons == reasons_by_ticket.get(ticket, (R.UNEXPECTED_ON_BROKER,))
        assert changes.gone_tickets == {closed.ticket for closed in result.closed}
        assert changes.gone_tickets == {p.ticket for p in previous.held.positions} - {p.ticket for p in held}
        assert changes.closed_trade_ids == {closed.trade_id for closed in result.closed if closed.trade_id}


@given(runs_of_syncs)
def test_entries_come_matches_first_then_opened_then_resolved(steps):
    for _, _, _, changes in play(steps):
        events = [entry.event for entry in changes.entries()]
        assert events == (
            [SyncEvent.MATCHED] * len(changes.new_matches)
            + [SyncEvent.DIVERGENCE] * len(changes.opened)
            + [SyncEvent.RESOLVED] * len(changes.resolved)
        )


@given(runs_of_syncs)
def test_open_divergences_read_back_from_the_state_as_they_were_written(steps):
    for _, _, _, changes in play(steps):
        stored = open_divergences_json(changes.open_divergences)
        assert open_divergences_of_json(stored) == changes.open_divergences


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=12))
def test_only_a_snapshot_newer_than_every_one_applied_is_applied(arrivals):
    applied: list[datetime] = []
    for seconds in arrivals:
        taken_at = NOW + timedelta(seconds=seconds)
        if not too_old(applied[-1] if applied else None, taken_at):
            applied.append(taken_at)

    assert applied == sorted(set(applied))
    assert applied[0] == NOW + timedelta(seconds=arrivals[0])
    assert applied[-1] == NOW + timedelta(seconds=max(arrivals))


def test_a_bridge_clock_running_ahead_does_not_make_a_trade_missing_early():
    expected = trade(0, age_seconds=10)
    received_at = NOW
    bridge_says = NOW + timedelta(minutes=5)

    result = reconcile([expected], [], instruments=INSTRUMENTS, now=reconciled_at(bridge_says, received_at))

    assert [pending.trade.trade_id for pending in result.pending] == ["T0"]
    assert result.missing == ()


def test_a_snapshot_taken_earlier_than_it_arrived_is_judged_at_its_own_time():
    expected = trade(0, age_seconds=10)

    result = reconcile(
        [expected],
        [],
        instruments=INSTRUMENTS,
        now=reconciled_at(NOW, received_at=NOW + timedelta(minutes=5)),
    )

    assert [pending.trade.trade_id for pending in result.pending] == ["T0"]
