"""An account's guard thresholds and switches, with the rules that keep them coherent."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from tradeguard.bodies import invalid_fields
from tradeguard.values import ClockTime, Numeric, TimeZoneName

# Exact inside, a JSON number at the edge, like every number the API sends.
_AS_NUMBER = PlainSerializer(float, return_type=float, when_used="json")
Percent = Annotated[Numeric, Field(gt=0, le=100), _AS_NUMBER]


class GuardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drawdown_warning_pct: Percent = Decimal("15")
    drawdown_critical_pct: Percent = Decimal("20")
    min_equity: Annotated[Numeric, Field(ge=0), _AS_NUMBER] = Decimal("100")
    daily_loss_limit_pct: Percent | None = None
    daily_loss_anchor: Literal["balance", "equity"] = "balance"
    daily_reset_time: ClockTime = Field(default="00:00", description="HH:MM in daily_reset_tz")
    daily_reset_tz: TimeZoneName = "UTC"
    critical_confirmations: Annotated[int, Field(ge=1, le=100)] = 1
    auto_close_drawdown: bool = True
    auto_close_market: bool = True
    gap_warning_pct: Percent = Decimal("5")
    gap_critical_pct: Percent = Decimal("10")
    spread_warning_pct: Percent = Decimal("0.5")
    spread_critical_pct: Percent = Decimal("1")
    stale_after_seconds: Annotated[int, Field(ge=5, le=86_400)] = 60
    grace_seconds: Annotated[int, Field(ge=0, le=3_600)] = 30
    match_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300
    entry_slippage_pips: Annotated[Numeric, Field(ge=0, le=10_000), _AS_NUMBER] = Decimal("2")

    @model_validator(mode="after")
    def _warning_below_critical(self) -> GuardConfig:
        pairs = (
            ("drawdown_warning_pct", "drawdown_critical_pct"),
            ("gap_warning_pct", "gap_critical_pct"),
            ("spread_warning_pct", "spread_critical_pct"),
        )
        problems = [
            ((warning,), f"must be below {critical} ({getattr(self, critical)})", getattr(self, warning))
            for warning, critical in pairs
            if getattr(self, warning) >= getattr(self, critical)
        ]
        if problems:
            raise invalid_fields(GuardConfig, problems)
        return self


GUARD_CONFIG_FIELDS = tuple(GuardConfig.model_fields)
