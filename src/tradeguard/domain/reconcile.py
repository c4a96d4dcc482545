"""Reconciliation: pairing the trades the platform expects with the positions the broker holds.

`reconcile` is a pure function of one snapshot. It pairs trades with positions, sorts every
trade and every position into exactly one outcome, names what differs on each pair, and
reports the positions that disappeared since the previous snapshot. What changed since the
previous sync, which is all the log records, is `domain.sync`'s to say.

Matching, in two passes, both deterministic whatever the order of the inputs:

1. A trade that knows its broker ticket pairs with the position holding that ticket,
   whatever its open time, if the position's symbol and side agree with the trade. A
   ticket on another symbol or side is not trusted (the ticket was mis-recorded, or
   belongs to another account): both sides then take part in the second pass like any
   unpaired trade or position.
2. The remaining trades and positions pair by normalized symbol and side, when the
   position opened within `match_window_seconds` of the trade's `age_anchor`. Among the
   candidates, the closest volume wins, then the closest entry price, then the closest
   open time, then the lowest trade id and ticket; each side pairs at most once.

Differences in volume, price or stops never keep a pair apart: they become the pair's
divergence reasons. (The older platform gated matching on the very tolerances its
divergence checks tested, so those checks never fired.)

The deals a snapshot carries (the broker's history since the previous one) say what a close
realized. Each deal the account's record does not hold yet (`DealHistory`) lands in exactly one
outcome, by its ticket:

- the position left the broker in this snapshot: the close's realized P&L (`ClosedOnBroker`);
  a close without deals keeps the last floating P&L, labelled so;
- the snapshot still holds the position: a partial close (`PartialClose`);
- a close already recorded (bridges may see the history late): its P&L is amended
  (`CloseRealized`): realized from these deals when it was the last floating one, or
  increased by them when it was realized already;
- a ticket the account never held in a snapshot (a position opened and closed between two
  snapshots, or a bridge's mistake): `UnmatchedDeals`, kept for the record, never refused,
  so a bridge's bad deal cannot blind the guards.

A deal already recorded (a bridge resends deals until a snapshot carrying them is applied) is
dropped, and so is a deal listed twice: a deal is identified by all its fields, its `deal_id`
included.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from tradeguard.domain.instruments import Instrument, InstrumentTable, normalize_symbol, symbol_root
from tradeguard.domain.model import BrokerPosition, ClosedDeal, CloseReason, ExpectedTrade, Side

_PIPS_SHOWN = Decimal("0.1")


class DivergenceReason(enum.StrEnum):
    MISSING_ON_BROKER = "missing_on_broker"
    UNEXPECTED_ON_BROKER = "unexpected_on_broker"
    PARTIAL_FILL = "partial_fill"
    VOLUME_MISMATCH = "volume_mismatch"
    ENTRY_SLIPPAGE = "entry_slippage"
    SL_MISMATCH = "sl_mismatch"
    TP_MISMATCH = "tp_mismatch"


class ReconciliationStatus(enum.StrEnum):
    HEALTHY = "healthy"
    WARNING = "warning"
    IDLE = "idle"
    # Never returned by `reconcile`: the shell sets it when the feed is stale or failing,
    # and the status field has one vocabulary.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """Tolerances of one account's reconciliation.

    `volume_tolerance_lots` is absolute, in lots: brokers fill in lot steps (0.01), so a
    relative tolerance would mean nothing. A difference strictly beyond it is a
    divergence; the default only absorbs decimal noise. The same "strictly beyond" holds
    for the pip tolerances: exactly 2 pips of slippage with a 2-pip tolerance is fine.
    """

    grace_seconds: int = 30
    match_window_seconds: int = 300
    entry_slippage_pips: Decimal = Decimal(2)
    volume_tolerance_lots: Decimal = Decimal("0.00000001")
    sl_tp_tolerance_pips: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        for name in (
            "grace_seconds",
            "match_window_seconds",
            "entry_slippage_pips",
            "volume_tolerance_lots",
            "sl_tp_tolerance_pips",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def grace_period(self) -> timedelta:
        return timedelta(seconds=self.grace_seconds)

    @property
    def match_window(self) -> timedelta:
        return timedelta(seconds=self.match_window_seconds)


@dataclass(frozen=True, slots=True)
class PreviousSnapshot:
    """What the broker held at the previous snapshot, and which trade each ticket was paired with.

    Built from the previous result with `Reconciliation.as_previous()`, or from stored rows.
    """

    positions: tuple[BrokerPosition, ...] = ()
    trade_id_by_ticket: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class MatchedPair:
    trade: ExpectedTrade
    position: BrokerPosition
    reasons: tuple[DivergenceReason, ...] = ()

    @property
    def is_clean(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class PendingTrade:
    """An expected trade not on the broker yet, still within its grace period: fills take time."""

    trade: ExpectedTrade
    grace_ends_at: datetime


class PnlSource(enum.StrEnum):
    """Where a close's P&L comes from: the broker's deals, or the last snapshot that held the position."""

    REALIZED = "realized"
    LAST_FLOATING = "last_floating"
    # Never a `ClosedOnBroker`'s: a close command's entry takes the profit its acknowledgement
    # reported when no deal came, and the field has one vocabulary.
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class RealizedPnl:
    """What one ticket's deals realized together; price, time and reason are the last deal's."""

    deals: tuple[ClosedDeal, ...]

    def __post_init__(self) -> None:
        if not self.deals:
            raise ValueError("a realized P&L needs at least one deal")

    @classmethod
    def of(cls, deals: Iterable[ClosedDeal]) -> RealizedPnl:
        return cls(tuple(sorted(deals, key=_deal_order)))

    @property
    def ticket(self) -> str:
        return self.deals[-1].ticket

    @property
    def profit(self) -> Decimal:
        return sum((deal.profit for deal in self.deals), Decimal(0))

    @property
    def swap(self) -> Decimal:
        return sum((deal.swap for deal in self.deals), Decimal(0))

    @property
    def commission(self) -> Decimal:
        return sum((deal.commission for deal in self.deals), Decimal(0))

    @property
    def net_profit(self) -> Decimal:
        return sum((deal.net_profit for deal in self.deals), Decimal(0))

    @property
    def close_price(self) -> Decimal:
        return self.deals[-1].close_price

    @property
    def closed_at(self) -> datetime:
        return self.deals[-1].closed_at

    @property
    def reason(self) -> CloseReason:
        return self.deals[-1].reason


@dataclass(frozen=True, slots=True)
class ClosedOnBroker:
    """A position the previous snapshot held and this one does not (SL/TP hit, stop-out, manual close).

    `realized` is what the deals of its ticket in this snapshot realized. Without them the
    close P&L is the last floating one (profit + swap + commission as of the previous
    snapshot), and `pnl_source` says so. A trade paired with the ticket is reported here and
    takes part in no other outcome, so an ordinary stop-loss hit does not also read as a
    missing trade.
    """

    ticket: str
    symbol: str
    side: Side
    volume: Decimal
    open_price: Decimal
    last_price: Decimal
    last_floating_pnl: Decimal
    opened_at: datetime
    trade_id: str | None
    realized: RealizedPnl | None = None

    @property
    def pnl_source(self) -> PnlSource:
        return PnlSource.LAST_FLOATING if self.realized is None else PnlSource.REALIZED

    @property
    def net_profit(self) -> Decimal:
        return self.last_floating_pnl if self.realized is None else self.realized.net_profit

    @property
    def close_price(self) -> Decimal:
        return self.last_price if self.realized is None else self.realized.close_price


@dataclass(frozen=True, slots=True)
class PartialClose:
    """Deals for a position the snapshot still holds (at its remaining volume)."""

    position: BrokerPosition
    realized: RealizedPnl


@dataclass(frozen=True, slots=True)
class RecordedClose:
    """A close the account's record holds, as its latest entry states it."""

    ticket: str
    symbol: str
    volume: Decimal
    trade_id: str | None
    net_profit: Decimal
    pnl_source: PnlSource


@dataclass(frozen=True, slots=True)
class CloseRealized:
    """Deals that arrived after their position's close was recorded: the close's P&L, amended."""

    close: RecordedClose
    realized: RealizedPnl

    @property
    def net_profit(self) -> Decimal:
        if self.close.pnl_source is PnlSource.LAST_FLOATING:
            return self.realized.net_profit
        return self.close.net_profit + self.realized.net_profit


@dataclass(frozen=True, slots=True)
class UnmatchedDeals:
    """Deals for a ticket the account never held in a snapshot and never recorded closing."""

    realized: RealizedPnl


@dataclass(frozen=True, slots=True)
class DealHistory:
    """What the account's record holds about the tickets of a snapshot's deals.

    `recorded` are the deals already accounted for; `closes` the recorded close of each ticket.
    """

    recorded: frozenset[ClosedDeal] = frozenset()
    closes: Mapping[str, RecordedClose] = field(default_factory=lambda: MappingProxyType({}))


DivergenceKey = tuple[str | None, str | None, tuple[DivergenceReason, ...]]


@dataclass(frozen=True, slots=True)
class Divergence:
    """One problem: a missing trade, an unexpected position, or a pair that differs."""

    reasons: tuple[DivergenceReason, ...]
    trade_id: str | None
    ticket: str | None
    symbol: str
    message: str

    @property
    def key(self) -> DivergenceKey:
        """Identity across snapshots: the same key twice is the same divergence, not a new one."""
        return (self.trade_id, self.ticket, self.reasons)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The outcome of one snapshot. Every broker position is in exactly one of `matches`
    and `unexpected`; every expected trade in exactly one of `matches`, `pending`,
    `missing`, or (by `trade_id`) `closed`.

    Every deal of the snapshot not recorded before is in exactly one of `closed` (as its
    `realized`), `partial_closes`, `closes_realized` and `unmatched_deals`.

    Status: `warning` when anything diverges; otherwise `healthy` when anything is
    matched or pending (a trade waiting for its fill is on track); otherwise `idle`.
    """

    matches: tuple[MatchedPair, ...]
    pending: tuple[PendingTrade, ...]
    missing: tuple[ExpectedTrade, ...]
    unexpected: tuple[BrokerPosition, ...]
    closed: tuple[ClosedOnBroker, ...]
    divergences: tuple[Divergence, ...]
    partial_closes: tuple[PartialClose, ...] = ()
    closes_realized: tuple[CloseRealized, ...] = ()
    unmatched_deals: tuple[UnmatchedDeals, ...] = ()

    @property
    def open_positions_count(self) -> int:
        return len(self.matches) + len(self.unexpected)

    @property
    def matched_positions(self) -> int:
        return sum(1 for pair in self.matches if pair.is_clean)

    @property
    def divergences_detected(self) -> int:
        return len(self.divergences)

    @property
    def status(self) -> ReconciliationStatus:
        if self.divergences:
            return ReconciliationStatus.WARNING
        if self.matches or self.pending:
            return ReconciliationStatus.HEALTHY
        return ReconciliationStatus.IDLE

    def divergence_keys(self) -> frozenset[DivergenceKey]:
        return frozenset(divergence.key for divergence in self.divergences)

    def trade_id_by_ticket(self) -> dict[str, str]:
        return {pair.position.ticket: pair.trade.trade_id for pair in self.matches}

    def as_previous(self) -> PreviousSnapshot:
        positions = tuple(pair.position for pair in self.matches) + self.unexpected
        return PreviousSnapshot(positions, MappingProxyType(self.trade_id_by_ticket()))


def reconcile(
    expected: Sequence[ExpectedTrade],
    positions: Sequence[BrokerPosition],
    *,
    instruments: InstrumentTable,
    now: datetime,
    settings: ReconcileSettings = ReconcileSettings(),
    previous: PreviousSnapshot | None = None,
    closed_deals: Sequence[ClosedDeal] = (),
    deal_history: DealHistory = DealHistory(),
) -> Reconciliation:
    """Reconcile an account's expected open trades against the broker's open positions.

    Raises ValueError when trade ids or tickets repeat: the snapshot validation upstream
    rejects such input, and pairing could not be deterministic with it.
    """
    _require_unique("trade_id", (trade.trade_id for trade in expected))
    _require_unique("ticket", (position.ticket for position in positions))

    deals_by_ticket = _new_deals_by_ticket(closed_deals, deal_history.recorded)
    closed = _closed_on_broker(positions, previous or PreviousSnapshot(), deals_by_ticket)
    partial_closes, closes_realized, unmatched_deals = _deals_after_the_close(
        positions, closed, deals_by_ticket, deal_history
    )
    closed_trade_ids = {event.trade_id for event in closed if event.trade_id is not None}
    open_trades = [trade for trade in expected if trade.trade_id not in closed_trade_ids]

    pairs = _pair_up(open_trades, positions, settings.match_window)
    matched_trade_ids = {trade.trade_id for trade, _ in pairs}
    matched_tickets = {position.ticket for _, position in pairs}

    matches: list[MatchedPair] = []
    divergences: list[Divergence] = []
    for trade, position in sorted(pairs, key=lambda pair: pair[1].ticket):
        findings = _pair_findings(trade, position, instruments.get(trade.symbol), settings)
        reasons = tuple(reason for reason, _ in findings)
        matches.append(MatchedPair(trade, position, reasons))
        if reasons:
            details = "; ".join(detail for _, detail in findings)
            divergences.append(
                Divergence(
                    reasons,
                    trade.trade_id,
                    position.ticket,
                    normalize_symbol(trade.symbol),
                    f"{_describe_trade(trade)} (trade {trade.trade_id}) held as ticket "
                    f"{position.ticket}: {details}",
                )
            )

    unexpected = sorted(
        (position for position in positions if position.ticket not in matched_tickets),
        key=lambda position: position.ticket,
    )
    for position in unexpected:
        divergences.append(
            Divergence(
                (DivergenceReason.UNEXPECTED_ON_BROKER,),
                None,
                position.ticket,
                normalize_symbol(position.symbol),
                f"{_describe_position(position)} on broker (ticket {position.ticket}) not expected",
            )
        )

    pending: list[PendingTrade] = []
    missing: list[ExpectedTrade] = []
    unmatched = (trade for trade in open_trades if trade.trade_id not in matched_trade_ids)
    for trade in sorted(unmatched, key=lambda trade: trade.trade_id):
        grace_ends_at = trade.age_anchor + settings.grace_period
        if now < grace_ends_at:
            pending.append(PendingTrade(trade, grace_ends_at))
            continue
        missing.append(trade)
        divergences.append(
            Divergence(
                (DivergenceReason.MISSING_ON_BROKER,),
                trade.trade_id,
                trade.ticket,
                normalize_symbol(trade.symbol),
                f"{_describe_trade(trade)} expected (trade {trade.trade_id}) not on broker",
            )
        )

    return Reconciliation(
        matches=tuple(matches),
        pending=tuple(pending),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        closed=closed,
        divergences=tuple(divergences),
        partial_closes=partial_closes,
        closes_realized=closes_realized,
        unmatched_deals=unmatched_deals,
    )


def _require_unique(name: str, values: Iterable[str]) -> None:
    repeated = sorted(value for value, count in Counter(values).items() if count > 1)
    if repeated:
        raise ValueError(f"repeated {name}: {', '.join(repeated)}")


def _deal_order(deal: ClosedDeal) -> tuple:
    return (
        deal.closed_at,
        deal.deal_id or "",
        deal.close_price,
        deal.profit,
        deal.swap,
        deal.commission,
        deal.reason.value,
    )


def _new_deals_by_ticket(
    deals: Iterable[ClosedDeal], recorded: frozenset[ClosedDeal]
) -> dict[str, RealizedPnl]:
    by_ticket: dict[str, list[ClosedDeal]] = {}
    for deal in dict.fromkeys(deals):
        if deal not in recorded:
            by_ticket.setdefault(deal.ticket, []).append(deal)
    return {ticket: RealizedPnl.of(deals) for ticket, deals in sorted(by_ticket.items())}


def _closed_on_broker(
    positions: Sequence[BrokerPosition],
    previous: PreviousSnapshot,
    deals_by_ticket: Mapping[str, RealizedPnl],
) -> tuple[ClosedOnBroker, ...]:
    still_open = {position.ticket for position in positions}
    gone = {p.ticket: p for p in previous.positions if p.ticket not in still_open}
    return tuple(
        ClosedOnBroker(
            ticket=position.ticket,
            symbol=normalize_symbol(position.symbol),
            side=position.side,
            volume=position.volume,
            open_price=position.open_price,
            last_price=position.current_price,
            last_floating_pnl=position.net_profit,
            opened_at=position.opened_at,
            trade_id=previous.trade_id_by_ticket.get(position.ticket),
            realized=deals_by_ticket.get(position.ticket),
        )
        for position in sorted(gone.values(), key=lambda position: position.ticket)
    )


def _deals_after_the_close(
    positions: Sequence[BrokerPosition],
    closed: Sequence[ClosedOnBroker],
    deals_by_ticket: Mapping[str, RealizedPnl],
    history: DealHistory,
) -> tuple[tuple[PartialClose, ...], tuple[CloseRealized, ...], tuple[UnmatchedDeals, ...]]:
    """The deals no close of this snapshot took: partial closes, late deals, deals of unknown tickets."""
    held = {position.ticket: position for position in positions}
    closed_now = {event.ticket for event in closed}
    partial: list[PartialClose] = []
    late: list[CloseRealized] = []
    unmatched: list[UnmatchedDeals] = []
    for ticket, realized in deals_by_ticket.items():
        if ticket in closed_now:
            continue
        if ticket in held:
            partial.append(PartialClose(held[ticket], realized))
        elif ticket in history.closes:
            late.append(CloseRealized(history.closes[ticket], realized))
        else:
            unmatched.append(UnmatchedDeals(realized))
    return tuple(partial), tuple(late), tuple(unmatched)


def _same_symbol_and_side(trade: ExpectedTrade, position: BrokerPosition) -> bool:
    return trade.side is position.side and symbol_root(trade.symbol) == symbol_root(position.symbol)


def _pair_up(
    trades: Sequence[ExpectedTrade],
    positions: Sequence[BrokerPosition],
    match_window: timedelta,
) -> list[tuple[ExpectedTrade, BrokerPosition]]:
    position_by_ticket = {position.ticket: position for position in positions}
    pairs: list[tuple[ExpectedTrade, BrokerPosition]] = []
    paired_trade_ids: set[str] = set()
    paired_tickets: set[str] = set()

    def pair(trade: ExpectedTrade, position: BrokerPosition) -> None:
        pairs.append((trade, position))
        paired_trade_ids.add(trade.trade_id)
        paired_tickets.add(position.ticket)

    # Sorted so that two trades naming the same ticket resolve the same way every time.
    for trade in sorted(trades, key=lambda trade: trade.trade_id):
        position = position_by_ticket.get(trade.ticket) if trade.ticket is not None else None
        if (
            position is not None
            and position.ticket not in paired_tickets
            and _same_symbol_and_side(trade, position)
        ):
            pair(trade, position)

    candidates = sorted(
        (
            _preference(trade, position)
            for trade in trades
            if trade.trade_id not in paired_trade_ids
            for position in positions
            if position.ticket not in paired_tickets
            and _same_symbol_and_side(trade, position)
            and abs(position.opened_at - trade.age_anchor) <= match_window
        ),
        key=lambda candidate: candidate[0],
    )
    for _, trade, position in candidates:
        if trade.trade_id not in paired_trade_ids and position.ticket not in paired_tickets:
            pair(trade, position)
    return pairs


def _preference(
    trade: ExpectedTrade, position: BrokerPosition
) -> tuple[tuple[Decimal, Decimal, timedelta, str, str], ExpectedTrade, BrokerPosition]:
    rank = (
        abs(position.volume - trade.volume),
        abs(position.open_price - trade.entry_price),
        abs(position.opened_at - trade.age_anchor),
        trade.trade_id,
        position.ticket,
    )
    return rank, trade, position


def _pair_findings(
    trade: ExpectedTrade,
    position: BrokerPosition,
    instrument: Instrument,
    settings: ReconcileSettings,
) -> list[tuple[DivergenceReason, str]]:
    """What differs on a pair, in reason order, each with the words a human needs to act on it.

    Slippage counts in both directions: a better fill than expected still means the
    broker did not do what the platform asked.
    """
    findings: list[tuple[DivergenceReason, str]] = []

    volume_gap = position.volume - trade.volume
    if abs(volume_gap) > settings.volume_tolerance_lots:
        findings.append(
            (DivergenceReason.PARTIAL_FILL, f"partial fill {position.volume} of {trade.volume} lots")
            if volume_gap < 0
            else (DivergenceReason.VOLUME_MISMATCH, f"volume {position.volume} lots, {trade.volume} expected")
        )

    slippage = abs(position.open_price - trade.entry_price)
    if slippage > instrument.pips_to_price(settings.entry_slippage_pips):
        findings.append(
            (
                DivergenceReason.ENTRY_SLIPPAGE,
                f"entry {position.open_price}, {trade.entry_price} expected "
                f"({_pips(instrument, slippage)} pips)",
            )
        )

    stop_tolerance = instrument.pips_to_price(settings.sl_tp_tolerance_pips)
    for reason, label, wanted, held in (
        (DivergenceReason.SL_MISMATCH, "stop loss", trade.stop_loss, position.stop_loss),
        (DivergenceReason.TP_MISMATCH, "take profit", trade.take_profit, position.take_profit),
    ):
        detail = _stop_difference(label, wanted, held, stop_tolerance, instrument)
        if detail is not None:
            findings.append((reason, detail))
    return findings


def _stop_difference(
    label: str,
    wanted: Decimal | None,
    held: Decimal | None,
    tolerance: Decimal,
    instrument: Instrument,
) -> str | None:
    # Only what the platform asked for is checked: a stop the trader added by hand is no divergence.
    if wanted is None:
        return None
    if held is None:
        return f"{label} missing on broker, {wanted} expected"
    gap = abs(held - wanted)
    if gap > tolerance:
        return f"{label} {held}, {wanted} expected ({_pips(instrument, gap)} pips)"
    return None


def _pips(instrument: Instrument, price_distance: Decimal) -> Decimal:
    return instrument.price_to_pips(price_distance).quantize(_PIPS_SHOWN)


def _describe_trade(trade: ExpectedTrade) -> str:
    return f"{normalize_symbol(trade.symbol)} {trade.side.value} {trade.volume}"


def _describe_position(position: BrokerPosition) -> str:
    return f"{normalize_symbol(position.symbol)} {position.side.value} {position.volume}"
