"""What a sync changed: a snapshot's reconciliation against the account as the previous sync left it.

`reconcile` judges one snapshot on its own; the account's record keeps only what changed. So a
sync compares: a pair not paired at the previous sync is a new match; a divergence reason not
open before is opened, and one open before and gone now is resolved, unless its position closed,
which the close itself tells; a feed the sweep marked stale resumes with the snapshot. A snapshot
not newer than the last one applied is too old: it is acknowledged and changes nothing, since
bridges retry and networks reorder.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tradeguard.domain.model import BrokerPosition
from tradeguard.domain.reconcile import DivergenceReason, MatchedPair, PreviousSnapshot, Reconciliation


class SyncEvent(enum.StrEnum):
    """The audit trail's entries that a sync's comparison leads to (the closes' are `reconcile`'s outcomes)."""

    MATCHED = "matched"
    DIVERGENCE = "divergence"
    RESOLVED = "resolved"
    FEED_RESUMED = "feed_resumed"


@dataclass(frozen=True, slots=True)
class SyncEntry:
    """One entry a sync adds to the audit trail; the shell stamps it with the account and the time."""

    event: SyncEvent
    message: str
    reason: str | None = None
    symbol: str | None = None
    ticket: str | None = None
    trade_id: str | None = None


FEED_RESUMED = SyncEntry(SyncEvent.FEED_RESUMED, "snapshots arrive again")

OpenDivergenceKey = tuple[str | None, str | None, DivergenceReason]


@dataclass(frozen=True, slots=True)
class OpenDivergence:
    """One reason of one divergence, as the account's state keeps it until the next sync."""

    trade_id: str | None
    ticket: str | None
    reason: DivergenceReason
    symbol: str
    message: str

    @property
    def key(self) -> OpenDivergenceKey:
        """The same key at two syncs is the same divergence, still open."""
        return (self.trade_id, self.ticket, self.reason)

    def entry(self, event: SyncEvent, message: str) -> SyncEntry:
        return SyncEntry(event, message, self.reason.value, self.symbol, self.ticket, self.trade_id)


@dataclass(frozen=True, slots=True)
class PreviousSync:
    """The account as the last applied snapshot left it: what the broker held, what diverged, the feed."""

    held: PreviousSnapshot = PreviousSnapshot()
    open_divergences: tuple[OpenDivergence, ...] = ()
    feed_stale: bool = False


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """A position of the snapshot with what the sync found of it: its trade, or why it diverges."""

    position: BrokerPosition
    matched_trade_id: str | None = None
    divergence_reasons: tuple[DivergenceReason, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncChanges:
    """What one applied snapshot changed, compared with the previous sync.

    `held` is every position of the snapshot, in its order; `gone_tickets` the positions held
    before and not now; `closed_trade_ids` the trades whose position left the broker.
    `open_divergences` is what the next sync compares with.
    """

    held: tuple[HeldPosition, ...]
    gone_tickets: frozenset[str]
    closed_trade_ids: frozenset[str]
    new_matches: tuple[MatchedPair, ...]
    opened: tuple[OpenDivergence, ...]
    resolved: tuple[OpenDivergence, ...]
    open_divergences: tuple[OpenDivergence, ...]
    feed_resumed: bool

    def entries(self) -> tuple[SyncEntry, ...]:
        """The reconciliation's entries, in the order the trail gets them: matches, opened, resolved."""
        return (
            *(_matched_entry(pair) for pair in self.new_matches),
            *(divergence.entry(SyncEvent.DIVERGENCE, divergence.message) for divergence in self.opened),
            *(
                divergence.entry(SyncEvent.RESOLVED, f"resolved: {divergence.message}")
                for divergence in self.resolved
            ),
        )


def too_old(last_applied_taken_at: datetime | None, taken_at: datetime) -> bool:
    """A snapshot not taken after the last one applied is too old to apply."""
    return last_applied_taken_at is not None and taken_at <= last_applied_taken_at


def reconciled_at(taken_at: datetime, received_at: datetime) -> datetime:
    """Grace periods run to the snapshot's time, never past the server's: a bridge clock running
    ahead cannot make an expected trade missing early."""
    return min(taken_at, received_at)


def open_divergences_of(result: Reconciliation) -> tuple[OpenDivergence, ...]:
    return tuple(
        OpenDivergence(divergence.trade_id, divergence.ticket, reason, divergence.symbol, divergence.message)
        for divergence in result.divergences
        for reason in divergence.reasons
    )


def sync_changes(
    previous: PreviousSync, positions: Sequence[BrokerPosition], result: Reconciliation
) -> SyncChanges:
    """Compare the reconciliation of the snapshot holding `positions` with the previous sync."""
    findings: dict[str, HeldPosition] = {}
    for pair in result.matches:
        findings[pair.position.ticket] = HeldPosition(pair.position, pair.trade.trade_id, pair.reasons)
    for position in result.unexpected:
        findings[position.ticket] = HeldPosition(position, None, (DivergenceReason.UNEXPECTED_ON_BROKER,))
    held = tuple(findings.get(position.ticket, HeldPosition(position)) for position in positions)

    held_tickets = {position.ticket for position in positions}
    previously_matched = set(previous.held.trade_id_by_ticket.items())
    new_matches = tuple(
        pair
        for pair in result.matches
        if (pair.position.ticket, pair.trade.trade_id) not in previously_matched
    )

    open_now = open_divergences_of(result)
    before = {divergence.key: divergence for divergence in previous.open_divergences}
    now = {divergence.key: divergence for divergence in open_now}
    closed_tickets = {closed.ticket for closed in result.closed}
    return SyncChanges(
        held=held,
        gone_tickets=frozenset(
            position.ticket for position in previous.held.positions if position.ticket not in held_tickets
        ),
        closed_trade_ids=frozenset(closed.trade_id for closed in result.closed if closed.trade_id),
        new_matches=new_matches,
        opened=tuple(divergence for key, divergence in now.items() if key not in before),
        resolved=tuple(
            divergence
            for key, divergence in before.items()
            if key not in now and divergence.ticket not in closed_tickets
        ),
        open_divergences=open_now,
        feed_resumed=previous.feed_stale,
    )


def _matched_entry(pair: MatchedPair) -> SyncEntry:
    trade_id, ticket = pair.trade.trade_id, pair.position.ticket
    return SyncEntry(
        SyncEvent.MATCHED,
        f"trade {trade_id} matched broker ticket {ticket}",
        symbol=pair.position.symbol,
        ticket=ticket,
        trade_id=trade_id,
    )
