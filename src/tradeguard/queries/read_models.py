"""The read models: what each read endpoint and the live stream answer, built by the queries beside them.

Money stays exact inside and is answered as a JSON number; field names are the older platform's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer

# Exact inside; a JSON number at the edge, printed with the stored decimal digits.
Number = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

SyncStatus = Literal["healthy", "warning", "idle", "error"]
GuardLevelName = Literal["normal", "warning", "critical"]
MarketConditionName = Literal["gap_up", "gap_down", "liquidity_crisis"]
TradeStatus = Literal["open", "closed"]


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
    magic: int | None = Field(
        description="the magic number of the expert that opened it, 0 for none; null: its bridge did not say"
    )
    comment: str | None = Field(
        description="the opening order's comment or client order id; null: its bridge did not say"
    )
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
    resolution: Literal["raw", "minute"]
    """raw: each point a snapshot or a bucket of them; minute: built from minute aggregates."""


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


class TradeOut(BaseModel):
    id: int
    account_id: int
    trade_id: str
    symbol: str
    side: Literal["buy", "sell"]
    volume: Number
    entry_price: Number
    stop_loss: Number | None
    take_profit: Number | None
    ticket: str | None
    signal_id: str | None
    approval_id: str | None
    opened_at: datetime | None
    received_at: datetime
    status: TradeStatus
    closed_at: datetime | None


class TradePage(BaseModel):
    account_id: int
    trades: list[TradeOut]
    next_cursor: int | None


class SymbolExposureOut(BaseModel):
    symbol: str = Field(description="the instrument, whatever the brokers call it")
    broker_symbols: list[str] = Field(description="the names the brokers hold it under")
    net_volume: Number = Field(description="lots bought minus lots sold")
    gross_volume: Number = Field(description="lots bought plus lots sold")
    floating_pnl: dict[str, Number] = Field(
        description="profit + swap + commission of the open positions, per account currency"
    )
    positions: int
    accounts: int
    one_percent_move_cost: Number = Field(
        description="what the positions lose if the price moves 1 % against their net side, in cost_currency"
    )
    cost_currency: str | None = Field(
        description="the instrument's quote currency; null when its name does not tell (indices, CFDs)"
    )
    cost_currency_differs: bool = Field(
        description="some account holding it keeps its books in another currency than cost_currency"
    )


class SignalExposureOut(BaseModel):
    signal_id: str
    symbols: list[SymbolExposureOut]


class PlatformExposure(BaseModel):
    symbols: list[SymbolExposureOut]
    signals: list[SignalExposureOut] = Field(
        description="the same, over the positions matched to each signal's trades"
    )


class DivergenceTally(BaseModel):
    expected: int = Field(description="trades received in the window")
    missing: int = Field(description="of them, logged missing on the broker")
    partial: int = Field(description="of them, held with another volume (partial fill or volume mismatch)")
    slipped: int = Field(description="of them, entered beyond the slippage tolerance")
    missing_rate: Number
    partial_rate: Number
    slipped_rate: Number


class SignalDivergence(DivergenceTally):
    signal_id: str | None = Field(description="null: the trades sent without a signal")


class BrokerDivergence(DivergenceTally):
    broker: str | None = Field(description="null: accounts without a broker named")


class DivergenceRates(BaseModel):
    since: datetime
    signals: list[SignalDivergence]
    brokers: list[BrokerDivergence]


AttentionName = Literal[
    "halted",
    "critical",
    "stale_feed",
    "divergent",
    "commands_outstanding",
    "commands_failed",
    "warning",
    "ok",
]


class PlatformAccount(BaseModel):
    """An account as the operator's platform view lists it."""

    account_id: int
    name: str
    owner_id: int
    broker: str | None
    login: str | None
    currency: str
    status: AttentionName = Field(description="the most urgent of `attention`; ok when it is empty")
    attention: list[AttentionName] = Field(description="everything that needs attention, most urgent first")
    trading_allowed: bool
    halted_at: datetime | None
    halt_reason: str | None
    drawdown_level: GuardLevelName
    market_level: GuardLevelName = Field(
        description="the market guard's worst level over the account's symbols"
    )
    drawdown_pct: Number | None
    equity: Number | None
    balance: Number | None
    last_sync_at: datetime | None
    sync_status: SyncStatus = Field(
        description="the account's reconciliation status, as /reconciliation/status"
    )
    total_syncs: int
    feed_stale: bool
    open_positions: int
    open_divergences: int
    outstanding_commands: int = Field(description="close commands pending or sent")
    failed_commands: int


class PlatformAccountPage(BaseModel):
    accounts: list[PlatformAccount]
    counts: dict[AttentionName, int] = Field(
        description="accounts per status among those the other filters select, whatever the status filter"
    )
    total: int = Field(description="accounts matching every filter, on every page")
    next_cursor: int | None


class DrawdownSeries(BaseModel):
    account_id: int
    warning_threshold_pct: Number
    critical_threshold_pct: Number
    points: list[Number | None] = Field(
        description="the deepest drawdown_pct of each bucket, oldest first; null: the bucket holds no snapshot"
    )


class PlatformDrawdowns(BaseModel):
    since: datetime
    until: datetime = Field(description="the end of the last bucket, the one holding the time of the request")
    bucket_seconds: float
    accounts: list[DrawdownSeries] = Field(
        description="the accounts asked for that have a snapshot in the window, by id; the others are absent"
    )
