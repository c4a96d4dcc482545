"""The platform's exposure and divergence rates, over every account: for the operator only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.domain.exposure import OpenLot, SymbolExposure, exposure_by_signal, exposure_by_symbol
from tradeguard.domain.model import Side
from tradeguard.domain.reconcile import DivergenceReason
from tradeguard.domain.sync import SyncEvent
from tradeguard.queries.read_models import (
    BrokerDivergence,
    DivergenceRates,
    DivergenceTally,
    PlatformExposure,
    SignalDivergence,
    SignalExposureOut,
    SymbolExposureOut,
)
from tradeguard.store.instruments import load_instrument_table
from tradeguard.store.models import Account, BrokerPosition, ExpectedTrade, ReconciliationEvent

_RATE_PLACES = Decimal("0.0001")
_PARTIAL_REASONS = (DivergenceReason.PARTIAL_FILL.value, DivergenceReason.VOLUME_MISMATCH.value)


async def platform_exposure(session: AsyncSession) -> PlatformExposure:
    # A position's signal is its matched trade's; the trade is the account's own, by trade id. Read
    # as plain rows, without the ORM's per-row bookkeeping: a platform holds thousands of positions.
    connection = await session.connection()
    rows = await connection.execute(
        select(
            BrokerPosition.account_id,
            Account.currency,
            BrokerPosition.symbol,
            BrokerPosition.side,
            BrokerPosition.volume,
            BrokerPosition.current_price,
            BrokerPosition.profit,
            BrokerPosition.swap,
            BrokerPosition.commission,
            ExpectedTrade.signal_id,
        )
        .join(Account, Account.id == BrokerPosition.account_id)
        .outerjoin(
            ExpectedTrade,
            and_(
                ExpectedTrade.account_id == BrokerPosition.account_id,
                ExpectedTrade.trade_id == BrokerPosition.matched_trade_id,
            ),
        )
    )
    lots = [
        OpenLot(
            account_id=account_id,
            account_currency=currency,
            symbol=symbol,
            side=Side(side),
            volume=volume,
            current_price=current_price,
            floating_pnl=profit + swap + commission,
            signal_id=signal_id,
        )
        for account_id, currency, symbol, side, volume, current_price, profit, swap, commission, signal_id in rows
    ]
    instruments = await load_instrument_table(session)
    return PlatformExposure(
        symbols=[_symbol_out(entry) for entry in exposure_by_symbol(lots, instruments)],
        signals=[
            SignalExposureOut(
                signal_id=entry.signal_id, symbols=[_symbol_out(item) for item in entry.symbols]
            )
            for entry in exposure_by_signal(lots, instruments)
        ],
    )


async def divergence_rates(session: AsyncSession, since: datetime) -> DivergenceRates:
    """Per signal and per broker, the trades received since `since` and how many of them diverged."""
    logged = ReconciliationEvent

    def reason_flag(*reasons: str):
        return func.max(case((logged.reason.in_(reasons), 1), else_=0))

    # One row per expected trade: whether the trail ever logged it missing, partial or slipped.
    per_trade = (
        select(
            ExpectedTrade.signal_id.label("signal_id"),
            Account.broker.label("broker"),
            reason_flag(DivergenceReason.MISSING_ON_BROKER.value).label("missing"),
            reason_flag(*_PARTIAL_REASONS).label("partial"),
            reason_flag(DivergenceReason.ENTRY_SLIPPAGE.value).label("slipped"),
        )
        .join(Account, Account.id == ExpectedTrade.account_id)
        .outerjoin(
            logged,
            and_(
                logged.account_id == ExpectedTrade.account_id,
                logged.trade_id == ExpectedTrade.trade_id,
                logged.event_type == SyncEvent.DIVERGENCE.value,
            ),
        )
        .where(ExpectedTrade.received_at >= since)
        .group_by(ExpectedTrade.id, ExpectedTrade.signal_id, Account.broker)
        .subquery()
    )

    async def tallies(key, model: type[DivergenceTally], name: str) -> list:
        rows = await session.execute(
            select(
                key.label("key"),
                func.count().label("expected"),
                func.sum(per_trade.c.missing).label("missing"),
                func.sum(per_trade.c.partial).label("partial"),
                func.sum(per_trade.c.slipped).label("slipped"),
            )
            .group_by(key)
            .order_by(key)
        )
        return [_tally(row, model, name) for row in rows]

    return DivergenceRates(
        since=since,
        signals=await tallies(per_trade.c.signal_id, SignalDivergence, "signal_id"),
        brokers=await tallies(per_trade.c.broker, BrokerDivergence, "broker"),
    )


def _tally(row, model: type[DivergenceTally], name: str) -> DivergenceTally:
    counts = {"missing": int(row.missing), "partial": int(row.partial), "slipped": int(row.slipped)}
    return model(
        **{name: row.key},
        expected=row.expected,
        **counts,
        **{f"{name}_rate": _rate(count, row.expected) for name, count in counts.items()},
    )


def _rate(count: int, expected: int) -> Decimal:
    return (Decimal(count) / Decimal(expected)).quantize(_RATE_PLACES)


def _symbol_out(entry: SymbolExposure) -> SymbolExposureOut:
    return SymbolExposureOut(
        symbol=entry.symbol,
        broker_symbols=list(entry.broker_symbols),
        net_volume=entry.net_volume,
        gross_volume=entry.gross_volume,
        floating_pnl=dict(entry.floating_pnl),
        positions=entry.positions,
        accounts=entry.accounts,
        one_percent_move_cost=entry.one_percent_move_cost,
        cost_currency=entry.cost_currency,
        cost_currency_differs=entry.cost_currency_differs,
    )
