"""Pure guards: each takes values and `now`, returns a decision value, and leaves acting to the shell."""

from tradeguard.domain.guards.drawdown import (
    DailyLossAnchor,
    DrawdownDecision,
    DrawdownReason,
    DrawdownSettings,
    DrawdownState,
    evaluate_drawdown,
    rearm,
    trading_day_start,
)
from tradeguard.domain.guards.levels import GuardDecision, GuardLevel, InvalidGuardSettings, worst
from tradeguard.domain.guards.market import (
    ImpossibleQuote,
    MarketCondition,
    MarketDecision,
    MarketReason,
    MarketSettings,
    SymbolCondition,
    SymbolMarketState,
    evaluate_market,
)
from tradeguard.domain.guards.stale import STALE_FEED, StaleDecision, evaluate_stale

__all__ = [
    "STALE_FEED",
    "DailyLossAnchor",
    "DrawdownDecision",
    "DrawdownReason",
    "DrawdownSettings",
    "DrawdownState",
    "GuardDecision",
    "GuardLevel",
    "ImpossibleQuote",
    "InvalidGuardSettings",
    "MarketCondition",
    "MarketDecision",
    "MarketReason",
    "MarketSettings",
    "StaleDecision",
    "SymbolCondition",
    "SymbolMarketState",
    "evaluate_drawdown",
    "evaluate_market",
    "evaluate_stale",
    "rearm",
    "trading_day_start",
    "worst",
]
