"""Whether an account may trade: an explicit state, with why and since when it was halted."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class TradingStatus(str, enum.Enum):
    ACTIVE = "active"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class TradingState:
    """ACTIVE carries no reason and no time. HALTED carries both when `halt` made it; a halted row
    stored without them (written by other means than a guard) reads as halted, reason and time
    unknown. A halt latches: halting a halted account keeps what it had, and only `rearm` makes
    it active again."""

    status: TradingStatus = TradingStatus.ACTIVE
    reason: str | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is TradingStatus.ACTIVE and (self.reason is not None or self.since is not None):
            raise ValueError("an active account has no halt reason and no halt time")

    @classmethod
    def active(cls) -> TradingState:
        return cls()

    @property
    def halted(self) -> bool:
        return self.status is TradingStatus.HALTED

    @property
    def trading_allowed(self) -> bool:
        return not self.halted

    def halt(self, reason: str, *, since: datetime) -> TradingState:
        if self.halted:
            return self
        return TradingState(TradingStatus.HALTED, reason, since)

    def rearm(self) -> TradingState:
        return TradingState.active()
