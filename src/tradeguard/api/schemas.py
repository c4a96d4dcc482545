"""Request and response bodies of the public API (v1), with the older platform's field names."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, create_model

from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.bodies import RequestBody
from tradeguard.values import ExternalId, Text, text

# Exact inside; a JSON number at the edge, printed with the stored decimal digits.
Number = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

SyncStatus = Literal["healthy", "warning", "idle", "error"]
GuardLevelName = Literal["normal", "warning", "critical"]
MarketConditionName = Literal["gap_up", "gap_down", "liquidity_crisis"]


class LoginForm(BaseModel):
    """The OAuth2 password form of `POST /auth/token`; its other fields (`grant_type`, `scope`) are not used."""

    username: Text
    password: str


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Me(BaseModel):
    id: int
    email: str
    role: str
    created_at: datetime


class AccountCreate(RequestBody):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: text(120, min_length=1)
    broker: text(120) | None = None
    login: ExternalId | None = None
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3,6}$")


class AccountOut(BaseModel):
    id: int
    owner_id: int
    name: str
    broker: str | None
    login: str | None
    currency: str
    created_at: datetime


class AccountList(BaseModel):
    accounts: list[AccountOut]
    next_cursor: int | None


class GuardConfigOut(GuardConfig):
    model_config = ConfigDict(extra="ignore")

    account_id: int


GuardConfigUpdate = create_model(
    "GuardConfigUpdate",
    __base__=RequestBody,
    __doc__="A partial update: fields left out (or null, where null is not a value) keep their value; "
    "the merged whole is validated.",
    **{
        # The default is never used: only the fields sent are merged (`exclude_unset`).
        name: (Annotated[field.annotation, *field.metadata, Field()], None)
        for name, field in GuardConfig.model_fields.items()
    },
)


class RearmRequest(RequestBody):
    reset_peak: bool = Field(
        default=False,
        description="Start a new high-water mark at the current equity instead of keeping the old peak.",
    )


class ReconciliationEventOut(BaseModel):
    id: int
    account_id: int
    created_at: datetime
    event_type: str
    reason: str | None
    symbol: str | None
    ticket: str | None
    trade_id: str | None
    message: str
    details: dict


class ReconciliationStatus(BaseModel):
    user_id: int
    account_id: int | None
    status: SyncStatus
    last_sync_at: datetime | None
    total_syncs: int
    last_sync_duration_ms: Number | None
    open_positions_count: int
    matched_positions: int
    divergences_detected: int
    recent_events: list[ReconciliationEventOut]
    error_message: str | None


class ReconciliationLogPage(BaseModel):
    user_id: int
    account_id: int | None
    events: list[ReconciliationEventOut]
    next_cursor: int | None


class PositionOut(BaseModel):
    position_id: int
    account_id: int
    ticket: str
    symbol: str
    direction: Literal["buy", "sell"]
    volume: Number
    entry_price: Number
    entry_time: datetime
    current_price: Number
    unrealized_pnl: Number
    unrealized_pnl_pct: Number
    take_profit: Number | None
    stop_loss: Number | None
    status: Literal["open"]
    matched_with_bot: bool
    divergence: str | None
    last_updated_at: datetime


class OpenPositions(BaseModel):
    user_id: int
    account_id: int | None
    total_positions: int
    total_unrealized_pnl: Number
    total_unrealized_pnl_pct: Number
    positions: list[PositionOut]
    last_updated_at: datetime | None


class DrawdownGuardOut(BaseModel):
    account_id: int | None
    current_equity: Number | None
    current_balance: Number | None
    peak_equity: Number | None
    current_drawdown_pct: Number
    alert_type: GuardLevelName
    alert_threshold_pct: Number
    warning_threshold_pct: Number
    critical_threshold_pct: Number
    min_equity: Number
    auto_close: bool
    should_close_all: bool
    trading_allowed: bool
    halted_at: datetime | None
    halt_reason: str | None


class MarketGuardAlert(BaseModel):
    """A symbol's market outside normal; the last five fields are the older platform's names."""

    account_id: int
    symbol: str
    alert_type: GuardLevelName
    gap_pct: Number | None
    spread_pct: Number | None
    should_close_positions: bool
    condition_type: MarketConditionName | None = Field(
        description="what decided alert_type; a gap wins over a spread at the same level"
    )
    price_gap_pct: Number | None = Field(description="gap_pct")
    bid_ask_spread_pct: Number | None = Field(description="spread_pct")
    bid: Number | None = Field(description="the last quote's bid")
    ask: Number | None = Field(description="the last quote's ask")


class GuardStatus(BaseModel):
    user_id: int
    account_id: int | None
    system_status: GuardLevelName
    trading_allowed: bool
    drawdown_guard: DrawdownGuardOut
    market_guard_alerts: list[MarketGuardAlert]
    any_positions_should_close: bool
    last_evaluated_at: datetime | None


class AlertOut(BaseModel):
    id: int
    account_id: int
    created_at: datetime
    kind: str
    level: str
    symbol: str | None
    message: str
    details: dict


class AlertPage(BaseModel):
    user_id: int
    account_id: int | None
    alerts: list[AlertOut]
    next_cursor: int | None


class EquityPoint(BaseModel):
    """A snapshot, or a bucket of them: then the values of its latest snapshot, and its extremes."""

    taken_at: datetime
    balance: Number
    equity: Number
    peak_equity: Number
    drawdown_pct: Number
    snapshots: int
    equity_min: Number
    equity_max: Number
    drawdown_max_pct: Number


class EquitySeries(BaseModel):
    account_id: int
    warning_threshold_pct: Number
    critical_threshold_pct: Number
    points: list[EquityPoint]
    since: datetime | None
    until: datetime | None
    bucket_seconds: float | None
    first_taken_at: datetime | None
    last_taken_at: datetime | None


class ComponentCheck(BaseModel):
    status: Literal["ok", "down"]
    backend: str
    latency_ms: float | None = None
    detail: str | None = None


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    service: Literal["trading-api"] = "trading-api"
    version: str
    checks: dict[str, ComponentCheck]


class ErrorBody(BaseModel):
    detail: str


class NoFields(RequestBody):
    """The body of an endpoint that takes no fields: none at all, or `{}`."""


class DeviceCreated(BaseModel):
    device_id: str
    account_id: int
    secret: str = Field(
        description="Shown this once; store it in the bridge. tradeguard cannot show it again."
    )
    created_at: datetime


class DeviceOut(BaseModel):
    device_id: str
    account_id: int
    created_at: datetime
    revoked_at: datetime | None


class DivergenceOut(BaseModel):
    reasons: list[str]
    trade_id: str | None
    ticket: str | None
    symbol: str
    message: str


class CommandOut(BaseModel):
    command_id: str
    account_id: int
    ticket: str
    symbol: str
    volume: Number
    cause: str
    state: str
    attempts: int
    created_at: datetime
    outcome_unknown: bool


class CommandList(BaseModel):
    commands: list[CommandOut]


class SyncSummary(BaseModel):
    applied: bool = Field(description="false when the snapshot was not newer than the last one applied")
    account_id: int
    clock_offset_seconds: float = Field(
        description="taken_at minus the server's clock when the snapshot arrived: about zero, or a few "
        "milliseconds below it, when the bridge's clock is right"
    )
    status: SyncStatus
    total_syncs: int
    open_positions_count: int
    matched_positions: int
    divergences_detected: int
    pending_trades: int
    divergences: list[DivergenceOut]
    closed_on_broker: list[str] = Field(
        description="tickets that left the broker since the previous snapshot"
    )
    commands: list[CommandOut]


class StreamSync(BaseModel):
    """The `sync` event of the live stream: an account's state after a snapshot or a sweep."""

    account_id: int
    status: SyncStatus
    total_syncs: int
    open_positions_count: int
    matched_positions: int
    divergences_detected: int
    equity: Number | None
    balance: Number | None
    peak_equity: Number | None
    drawdown_pct: Number | None
    drawdown_level: GuardLevelName
    trading_allowed: bool
    last_sync_at: datetime | None
    error_message: str | None


class StreamAlert(AlertOut):
    """The `alert` event of the live stream: `id` is the audit entry's, the stream's sequence (and
    the event's SSE id); `alert_id` is the alert's `id` in `/alerts`, its identity for de-duplicating."""

    alert_id: int | None = Field(
        description="the alert's id in /alerts; null only for entries of earlier releases"
    )
