"""Pure guards behind one interface (`guard.Guard`): each takes values and the moment judged,
returns a verdict, and leaves acting to the shell's one loop. `registry.GUARDS` lists them."""

from tradeguard.domain.guards.drawdown import (
    DailyLossAnchor,
    DrawdownGuard,
    DrawdownSettings,
    rules_from_settings,
)
from tradeguard.domain.guards.guard import (
    Action,
    Guard,
    GuardAlert,
    GuardAuditEntry,
    GuardInputs,
    GuardVerdict,
    MayCause,
    Trigger,
    UndeclaredEffect,
    check_declared,
)
from tradeguard.domain.guards.levels import GuardDecision, GuardLevel, InvalidGuardSettings, worst
from tradeguard.domain.guards.market import (
    ImpossibleQuote,
    MarketCondition,
    MarketDecision,
    MarketGuard,
    MarketReason,
    MarketSettings,
    SymbolCondition,
    SymbolMarketState,
    evaluate_market,
)
from tradeguard.domain.guards.registry import GUARDS, InvalidGuardRegistry, guards_on, registry
from tradeguard.domain.guards.stale import STALE_FEED, StaleDecision, StaleFeedGuard, evaluate_stale

__all__ = [
    "rules_from_settings",
    "GUARDS",
    "STALE_FEED",
    "Action",
    "DrawdownGuard",
    "Guard",
    "GuardAlert",
    "GuardAuditEntry",
    "GuardInputs",
    "GuardVerdict",
    "InvalidGuardRegistry",
    "MarketGuard",
    "MayCause",
    "StaleFeedGuard",
    "Trigger",
    "UndeclaredEffect",
    "check_declared",
    "guards_on",
    "registry",
    "DailyLossAnchor",
    "DrawdownSettings",
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
    "evaluate_market",
    "evaluate_stale",
    "worst",
]
