"""The schema. Every change goes through an Alembic migration in store/migrations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tradeguard.domain.commands import LIVE_STATES
from tradeguard.domain.sync import SyncEvent
from tradeguard.store.types import ExactDecimal, UTCDateTime

# SQLite only gives auto-increment to a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Written out as the migration that created the partial unique index has it.
_LIVE_COMMAND = "state IN ({})".format(", ".join(f"'{state.value}'" for state in LIVE_STATES))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credentials_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Raised by every change of what a token vouches for; a token issued before it is refused."""


class Account(Base):
    """A follower's broker account and the thresholds that guard it."""

    __tablename__ = "accounts"
    # A broker and login name one real account: an owner guarding it twice would keep two peaks and
    # send two close commands per position. Per owner, since tradeguard cannot tell who owns a login:
    # platform-wide, anyone could take a login first, and learn which are taken. NULLs are distinct.
    __table_args__ = (Index("uq_accounts_owner_broker_login", "owner_id", "broker", "login", unique=True),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    broker: Mapped[str | None] = mapped_column(String(120))
    login: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    drawdown_warning_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    drawdown_critical_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    min_equity: Mapped[Decimal] = mapped_column(ExactDecimal)
    daily_loss_limit_pct: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    daily_loss_anchor: Mapped[str] = mapped_column(String(16))
    daily_reset_time: Mapped[str] = mapped_column(String(5))
    daily_reset_tz: Mapped[str] = mapped_column(String(64))
    critical_confirmations: Mapped[int] = mapped_column(Integer)
    auto_close_drawdown: Mapped[bool] = mapped_column(Boolean)
    auto_close_market: Mapped[bool] = mapped_column(Boolean)
    gap_warning_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    gap_critical_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    spread_warning_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    spread_critical_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    stale_after_seconds: Mapped[int] = mapped_column(Integer)
    grace_seconds: Mapped[int] = mapped_column(Integer)
    match_window_seconds: Mapped[int] = mapped_column(Integer)
    entry_slippage_pips: Mapped[Decimal] = mapped_column(ExactDecimal)
    guard_rules: Mapped[str | None] = mapped_column(
        Text, doc="JSON: the account's risk rule set; NULL: the one its drawdown settings describe"
    )


class AccountState(Base):
    """The latest reconciled and guarded state of an account, rewritten by every accepted snapshot."""

    __tablename__ = "account_states"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    total_syncs: Mapped[int] = mapped_column(Integer)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_duration_ms: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    last_snapshot_taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    open_positions_count: Mapped[int] = mapped_column(Integer)
    matched_positions: Mapped[int] = mapped_column(Integer)
    divergences_detected: Mapped[int] = mapped_column(Integer)
    balance: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    equity: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    margin: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    peak_equity: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    drawdown_pct: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    drawdown_level: Mapped[str] = mapped_column(String(16))
    consecutive_critical: Mapped[int] = mapped_column(Integer)
    rule_states: Mapped[str | None] = mapped_column(
        Text,
        doc="JSON: what each risk rule remembers (its period's start values, step, trip); NULL: none yet",
    )
    open_divergences: Mapped[str] = mapped_column(
        Text, doc="JSON: the divergences of the last sync, to log changes only"
    )
    market_levels: Mapped[str] = mapped_column(Text, doc="JSON: symbol → {mid, level, market_details}")
    feed_stale: Mapped[bool] = mapped_column(Boolean)
    stale_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, index=True, doc="when the feed goes stale if no snapshot arrives; the sweep's index"
    )
    trading_allowed: Mapped[bool] = mapped_column(Boolean)
    halted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    halt_reason: Mapped[str | None] = mapped_column(Text)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Device(Base):
    """A bridge allowed to sign requests for one account."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeviceNonce(Base):
    """Nonces seen inside the signature window, for replay refusal."""

    __tablename__ = "device_nonces"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class InstrumentOverride(Base):
    """Per-deployment instrument specs; symbols without a row follow the conventions in domain/instruments."""

    __tablename__ = "instruments"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    pip_size: Mapped[Decimal] = mapped_column(ExactDecimal)
    contract_size: Mapped[Decimal] = mapped_column(ExactDecimal)


class ExpectedTrade(Base):
    """A trade the platform sent to the account."""

    __tablename__ = "expected_trades"
    __table_args__ = (
        UniqueConstraint("account_id", "trade_id"),
        Index("ix_expected_trades_account_status", "account_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    trade_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    volume: Mapped[Decimal] = mapped_column(ExactDecimal)
    entry_price: Mapped[Decimal] = mapped_column(ExactDecimal)
    stop_loss: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    take_profit: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    ticket: Mapped[str | None] = mapped_column(String(64))
    signal_id: Mapped[str | None] = mapped_column(String(64))
    approval_id: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    body_digest: Mapped[str] = mapped_column(String(64))


class BrokerPosition(Base):
    """An open position as the broker last reported it."""

    __tablename__ = "broker_positions"
    __table_args__ = (
        UniqueConstraint("account_id", "ticket"),
        Index("ix_broker_positions_account_symbol", "account_id", "symbol"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    volume: Mapped[Decimal] = mapped_column(ExactDecimal)
    open_price: Mapped[Decimal] = mapped_column(ExactDecimal)
    current_price: Mapped[Decimal] = mapped_column(ExactDecimal)
    stop_loss: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    take_profit: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    profit: Mapped[Decimal] = mapped_column(ExactDecimal)
    swap: Mapped[Decimal] = mapped_column(ExactDecimal)
    commission: Mapped[Decimal] = mapped_column(ExactDecimal)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    matched_trade_id: Mapped[str | None] = mapped_column(String(64))
    divergence: Mapped[str | None] = mapped_column(String(255))
    magic: Mapped[int | None] = mapped_column(BigInteger)
    """The opening expert's magic number, 0 for none; NULL: the bridge did not say."""
    comment: Mapped[str | None] = mapped_column(String(64))
    """The opening order's comment or client order id; NULL: the bridge did not say."""


class AccountSnapshot(Base):
    """Equity history: one row per applied snapshot, kept raw for `history_raw_retention_hours`.

    On PostgreSQL a table partitioned by day of `taken_at` (`store/retention.py` creates and drops the
    partitions), keyed by account first so that it can later be distributed by account as well. An
    account's snapshots are applied in strictly increasing `taken_at`, so the two make the key.
    """

    __tablename__ = "account_snapshots"
    __table_args__ = {"postgresql_partition_by": "RANGE (taken_at)"}

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    balance: Mapped[Decimal] = mapped_column(ExactDecimal)
    equity: Mapped[Decimal] = mapped_column(ExactDecimal)
    margin: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    peak_equity: Mapped[Decimal] = mapped_column(ExactDecimal)
    drawdown_pct: Mapped[Decimal] = mapped_column(ExactDecimal)


class EquityMinute(Base):
    """Equity history past the raw retention: per account and minute, rolled up from its snapshots
    (`domain/history.py` says what a minute holds), kept for `history_minute_retention_days`.

    On PostgreSQL partitioned by week of `minute`, keyed by account first like the raw points.
    """

    __tablename__ = "equity_minutes"
    __table_args__ = {"postgresql_partition_by": "RANGE (minute)"}

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    snapshots: Mapped[int] = mapped_column(Integer)
    first_taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    equity_first: Mapped[Decimal] = mapped_column(ExactDecimal)
    equity_last: Mapped[Decimal] = mapped_column(ExactDecimal)
    equity_min: Mapped[Decimal] = mapped_column(ExactDecimal)
    equity_max: Mapped[Decimal] = mapped_column(ExactDecimal)
    balance_first: Mapped[Decimal] = mapped_column(ExactDecimal)
    balance_last: Mapped[Decimal] = mapped_column(ExactDecimal)
    balance_min: Mapped[Decimal] = mapped_column(ExactDecimal)
    balance_max: Mapped[Decimal] = mapped_column(ExactDecimal)
    peak_equity: Mapped[Decimal] = mapped_column(ExactDecimal)
    drawdown_pct: Mapped[Decimal] = mapped_column(ExactDecimal)
    drawdown_max_pct: Mapped[Decimal] = mapped_column(ExactDecimal)


class HistoryRetention(Base):
    """How far back each of the equity history's resolutions still reaches, as maintenance left it."""

    __tablename__ = "history_retention"

    series: Mapped[str] = mapped_column(String(16), primary_key=True, doc="raw or minute")
    kept_from: Mapped[datetime] = mapped_column(
        UTCDateTime, doc="nothing of the series before this is kept: rolled up (raw) or dropped (minute)"
    )


_DIVERGENCE_EVENT = f"event_type = '{SyncEvent.DIVERGENCE.value}'"


class ReconciliationEvent(Base):
    """The append-only reconciliation log: changes only, never the same state again."""

    __tablename__ = "reconciliation_log"
    __table_args__ = (
        Index("ix_reconciliation_log_account_id", "account_id", "id"),
        # The closes of a snapshot's deals are looked up by ticket (`ingest.closes`).
        Index("ix_reconciliation_log_account_ticket", "account_id", "ticket"),
        # The divergence rates look up each recent trade's divergences: without it, every request
        # would scan the whole trail, which only grows.
        Index(
            "ix_reconciliation_log_divergence_trade",
            "account_id",
            "trade_id",
            postgresql_where=text(_DIVERGENCE_EVENT),
            sqlite_where=text(_DIVERGENCE_EVENT),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_type: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str | None] = mapped_column(String(32))
    ticket: Mapped[str | None] = mapped_column(String(64))
    trade_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="{}")
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id"), doc="the alert this entry tells, by its id in /alerts"
    )


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_account_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    symbol: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="{}")


class CloseCommand(Base):
    """An order to a bridge to close one position; the database allows one live command per position and cause."""

    __tablename__ = "close_commands"
    __table_args__ = (
        Index("ix_close_commands_account_state", "account_id", "state"),
        Index("ix_close_commands_state_expires", "state", "expires_at"),
        Index(
            "uq_close_commands_live",
            "account_id",
            "ticket",
            "cause",
            unique=True,
            postgresql_where=text(_LIVE_COMMAND),
            sqlite_where=text(_LIVE_COMMAND),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    volume: Mapped[Decimal] = mapped_column(ExactDecimal)
    cause: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, doc="when a snapshot first no longer held the position"
    )
    result: Mapped[str | None] = mapped_column(Text)


class AlertDelivery(Base):
    """One alert to one notifier: retried in the background with back-off, never on the ingest path."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    notifier: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    alert: Mapped[Alert] = relationship()
