"""Market guard: per symbol, price gaps between consecutive quotes and wide spreads.

`evaluate_market` judges a snapshot's quotes against one `SymbolMarketState` per symbol of an
account (keyed by the symbol exactly as the bridge quotes it, which is also how its positions name
it); `MarketGuard` is the guard the shell's loop runs on every applied snapshot, remembering each
symbol's state and last measurement in the account's `market_levels`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from tradeguard.domain.guards.guard import (
    Action,
    GuardAlert,
    GuardAuditEntry,
    GuardInputs,
    GuardVerdict,
    MayCause,
    Trigger,
    level_reached,
)
from tradeguard.domain.guards.levels import GuardLevel, InvalidGuardSettings, worst
from tradeguard.domain.model import Quote

_HUNDRED = Decimal(100)
_PCT_PLACES = Decimal("0.0001")


class ImpossibleQuote(ValueError):
    """A quote no market can produce; ingest validation should have rejected it already."""

    def __init__(self, symbol: str, problem: str) -> None:
        super().__init__(f"impossible quote for {symbol}: {problem}")
        self.symbol = symbol


class MarketReason(str, enum.Enum):
    GAP_WARNING = "gap_warning"
    GAP_CRITICAL = "gap_critical"
    SPREAD_WARNING = "spread_warning"
    SPREAD_CRITICAL = "spread_critical"


class MarketCondition(str, enum.Enum):
    """What makes a symbol's market abnormal, in the older platform's words."""

    GAP_UP = "gap_up"
    GAP_DOWN = "gap_down"
    LIQUIDITY_CRISIS = "liquidity_crisis"


@dataclass(frozen=True, slots=True)
class MarketSettings:
    """Thresholds in percent. A gap warns at >= gap_warning_pct; a spread warns only when
    strictly wider than spread_warning_pct; both are critical at >= their critical value."""

    gap_warning_pct: Decimal = Decimal(5)
    gap_critical_pct: Decimal = Decimal(10)
    spread_warning_pct: Decimal = Decimal("0.5")
    spread_critical_pct: Decimal = Decimal(1)
    auto_close: bool = True

    def __post_init__(self) -> None:
        for name in (
            "gap_warning_pct",
            "gap_critical_pct",
            "spread_warning_pct",
            "spread_critical_pct",
        ):
            if isinstance(getattr(self, name), float):
                raise InvalidGuardSettings(f"{name} must be a Decimal, not a float")
        if not 0 < self.gap_warning_pct < self.gap_critical_pct:
            raise InvalidGuardSettings(
                "gap thresholds must satisfy 0 < gap_warning_pct < gap_critical_pct, "
                f"got {self.gap_warning_pct} and {self.gap_critical_pct}"
            )
        if not 0 < self.spread_warning_pct < self.spread_critical_pct:
            raise InvalidGuardSettings(
                "spread thresholds must satisfy 0 < spread_warning_pct < spread_critical_pct, "
                f"got {self.spread_warning_pct} and {self.spread_critical_pct}"
            )


@dataclass(frozen=True, slots=True)
class SymbolMarketState:
    """What the shell persists per symbol: the last mid price and the level last reported."""

    mid: Decimal
    level: GuardLevel = GuardLevel.NORMAL

    def __post_init__(self) -> None:
        if self.mid <= 0:
            raise ValueError(f"a persisted mid price must be positive, got {self.mid}")


@dataclass(frozen=True, slots=True)
class SymbolCondition:
    """The verdict on one symbol's quote. `gap_pct` is None on the symbol's first quote.

    `condition` names what decided the level (None while normal): a gap up or down, or a wide
    spread (`LIQUIDITY_CRISIS`). When both apply, the one at the higher level wins; at the same
    level the gap wins, since it is the move the account's positions have already taken, while
    the spread is only what leaving them would cost.
    """

    symbol: str
    bid: Decimal
    ask: Decimal
    mid: Decimal
    gap_pct: Decimal | None
    spread_pct: Decimal
    level: GuardLevel
    previous_level: GuardLevel
    reasons: tuple[MarketReason, ...]
    condition: MarketCondition | None
    previous_mid: Decimal | None

    @property
    def level_changed(self) -> bool:
        return self.level is not self.previous_level

    @property
    def message(self) -> str:
        """Written out only when asked: most quotes of most snapshots change no level and say nothing."""
        head = f"{self.symbol} market {self.level.value}"
        if self.level_changed:
            head += f" (was {self.previous_level.value})"
        details = [
            f"gap {self.gap_pct:.2f}% from previous mid {self.previous_mid}"
            if reason in _GAP_REASONS
            else f"spread {self.spread_pct:.2f}%"
            for reason in self.reasons
        ] or [f"mid {self.mid}, spread {self.spread_pct:.2f}%"]
        return f"{head}: " + "; ".join(details)

    @property
    def should_alert(self) -> bool:
        return self.level_changed


@dataclass(frozen=True, slots=True)
class MarketDecision:
    """The market guard's verdict on one snapshot's quotes.

    `conditions` has one entry per quoted symbol, in quote order. `next_state` holds
    every symbol ever seen, those not quoted this time unchanged.
    `symbols_to_close` lists every CRITICAL symbol while auto-close is on, on every
    snapshot it stays critical; the shell keeps one live close command per position.
    """

    conditions: tuple[SymbolCondition, ...]
    symbols_to_close: tuple[str, ...]
    next_state: Mapping[str, SymbolMarketState]

    @property
    def level(self) -> GuardLevel:
        return worst(condition.level for condition in self.conditions)

    @property
    def alerts(self) -> tuple[SymbolCondition, ...]:
        return tuple(condition for condition in self.conditions if condition.should_alert)


def evaluate_market(
    quotes: Sequence[Quote],
    previous: Mapping[str, SymbolMarketState],
    settings: MarketSettings,
) -> MarketDecision:
    """Judge a snapshot's quotes against each symbol's previous mid price and level.

    gap % = |mid − previous mid| / previous mid × 100, with mid = (bid + ask) / 2;
    spread % = (ask − bid) / bid × 100; both rounded to 4 places before comparing, so
    the number shown never contradicts the level. Raises ImpossibleQuote for ask < bid,
    a non-positive price, or a symbol quoted twice in one snapshot.
    """
    seen: set[str] = set()
    conditions: list[SymbolCondition] = []
    next_state = dict(previous)
    for quote in quotes:
        _check_possible(quote)
        if quote.symbol in seen:
            raise ImpossibleQuote(quote.symbol, "quoted more than once in one snapshot")
        seen.add(quote.symbol)
        condition = _evaluate_quote(quote, previous.get(quote.symbol), settings)
        conditions.append(condition)
        next_state[quote.symbol] = SymbolMarketState(mid=condition.mid, level=condition.level)
    symbols_to_close: tuple[str, ...] = ()
    if settings.auto_close:
        symbols_to_close = tuple(
            condition.symbol for condition in conditions if condition.level is GuardLevel.CRITICAL
        )
    return MarketDecision(
        conditions=tuple(conditions),
        symbols_to_close=symbols_to_close,
        next_state=MappingProxyType(next_state),
    )


def _check_possible(quote: Quote) -> None:
    if quote.bid <= 0 or quote.ask <= 0:
        raise ImpossibleQuote(quote.symbol, f"non-positive price (bid {quote.bid}, ask {quote.ask})")
    if quote.ask < quote.bid:
        raise ImpossibleQuote(quote.symbol, f"ask {quote.ask} below bid {quote.bid}")


_GAP_REASONS = frozenset({MarketReason.GAP_WARNING, MarketReason.GAP_CRITICAL})


class _Finding(NamedTuple):
    reason: MarketReason
    level: GuardLevel
    condition: MarketCondition


def _evaluate_quote(
    quote: Quote, previous: SymbolMarketState | None, settings: MarketSettings
) -> SymbolCondition:
    mid = (quote.bid + quote.ask) / 2
    spread = _pct(quote.ask - quote.bid, quote.bid)
    gap = None
    # The gap comes first, so that it wins a tie for `deciding` below.
    found: list[_Finding] = []
    if previous is not None:
        gap = _pct(abs(mid - previous.mid), previous.mid)
        direction = MarketCondition.GAP_UP if mid > previous.mid else MarketCondition.GAP_DOWN
        if gap >= settings.gap_critical_pct:
            found.append(_Finding(MarketReason.GAP_CRITICAL, GuardLevel.CRITICAL, direction))
        elif gap >= settings.gap_warning_pct:
            found.append(_Finding(MarketReason.GAP_WARNING, GuardLevel.WARNING, direction))
    wide = MarketCondition.LIQUIDITY_CRISIS
    if spread >= settings.spread_critical_pct:
        found.append(_Finding(MarketReason.SPREAD_CRITICAL, GuardLevel.CRITICAL, wide))
    elif spread > settings.spread_warning_pct:
        found.append(_Finding(MarketReason.SPREAD_WARNING, GuardLevel.WARNING, wide))

    level = worst(finding.level for finding in found)
    deciding = max(found, key=lambda finding: finding.level, default=None)
    previous_level = GuardLevel.NORMAL if previous is None else previous.level
    return SymbolCondition(
        symbol=quote.symbol,
        bid=quote.bid,
        ask=quote.ask,
        mid=mid,
        gap_pct=gap,
        spread_pct=spread,
        level=level,
        previous_level=previous_level,
        reasons=tuple(finding.reason for finding in found),
        condition=deciding.condition if deciding else None,
        previous_mid=None if previous is None else previous.mid,
    )


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole * _HUNDRED).quantize(_PCT_PLACES)


class MarketGuard:
    name = "market"
    trigger = Trigger.SNAPSHOT
    may_cause = MayCause(
        alerts=frozenset({"market"}),
        audit_entries=frozenset({"guard_level"}),
        actions=frozenset({Action.CLOSE_SYMBOL}),
        remembers=frozenset({"market_levels"}),
    )

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        stored = inputs.stored["market_levels"]
        previous = {
            symbol: SymbolMarketState(mid=Decimal(levels["mid"]), level=GuardLevel(levels["level"]))
            for symbol, levels in stored.items()
        }
        decision = evaluate_market(inputs.quotes, previous, market_settings_from(inputs.config))
        records: list[GuardAlert | GuardAuditEntry] = []
        for condition in decision.alerts:
            details = market_details(condition)
            records += level_reached(
                self.name, "market", condition.level, condition.message, details, symbol=condition.symbol
            )
        return GuardVerdict(
            records=tuple(records),
            remember=MappingProxyType({"market_levels": _market_levels(stored, decision)}),
            close_symbols=decision.symbols_to_close,
        )


def market_settings_from(config: Mapping[str, Any]) -> MarketSettings:
    return MarketSettings(
        gap_warning_pct=config["gap_warning_pct"],
        gap_critical_pct=config["gap_critical_pct"],
        spread_warning_pct=config["spread_warning_pct"],
        spread_critical_pct=config["spread_critical_pct"],
        auto_close=config["auto_close_market"],
    )


def market_details(condition: SymbolCondition) -> dict[str, Any]:
    """What was measured, under today's names and, beside them, the older platform's."""
    return {
        "gap_pct": condition.gap_pct,
        "spread_pct": condition.spread_pct,
        "condition_type": condition.condition.value if condition.condition else None,
        "price_gap_pct": condition.gap_pct,
        "bid_ask_spread_pct": condition.spread_pct,
        "bid": condition.bid,
        "ask": condition.ask,
    }


def _market_levels(stored: Mapping[str, Mapping[str, Any]], decision: MarketDecision) -> dict[str, dict]:
    """The next state of every symbol; those not quoted just now keep what was last measured."""
    evaluated = {condition.symbol: condition for condition in decision.conditions}
    merged = {}
    for symbol, market in decision.next_state.items():
        condition = evaluated.get(symbol)
        measured = market_details(condition) if condition else stored.get(symbol, {})
        merged[symbol] = {**measured, "mid": market.mid, "level": market.level.value}
    return merged
