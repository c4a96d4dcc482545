"""Open positions as the broker last reported them, with their P&L."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.domain.instruments import normalize_symbol
from tradeguard.domain.model import Side
from tradeguard.domain.pnl import pnl_pct_of_balance, price_move_pct
from tradeguard.queries.read_models import PositionOut
from tradeguard.store.models import AccountState, BrokerPosition


def position_out(row: BrokerPosition) -> PositionOut:
    return PositionOut(
        position_id=row.id,
        account_id=row.account_id,
        ticket=row.ticket,
        symbol=row.symbol,
        direction=row.side,
        volume=row.volume,
        entry_price=row.open_price,
        entry_time=row.opened_at,
        current_price=row.current_price,
        unrealized_pnl=row.profit + row.swap + row.commission,
        unrealized_pnl_pct=price_move_pct(Side(row.side), row.open_price, row.current_price),
        take_profit=row.take_profit,
        stop_loss=row.stop_loss,
        status="open",
        matched_with_bot=row.matched_trade_id is not None,
        divergence=row.divergence,
        magic=row.magic,
        comment=row.comment,
        last_updated_at=row.last_updated_at,
    )


async def open_positions_fields(session: AsyncSession, account_ids: list[int], symbol: str | None) -> dict:
    query = (
        select(BrokerPosition)
        .where(BrokerPosition.account_id.in_(account_ids))
        .order_by(BrokerPosition.account_id, BrokerPosition.opened_at, BrokerPosition.id)
    )
    if symbol is not None:
        query = query.where(BrokerPosition.symbol == normalize_symbol(symbol))
    positions = [position_out(row) for row in (await session.scalars(query)).all()] if account_ids else []
    balances = await session.scalars(
        select(AccountState.balance).where(AccountState.account_id.in_(account_ids))
    )
    total_balance = sum((balance for balance in balances.all() if balance is not None), Decimal(0))
    total_pnl = sum((position.unrealized_pnl for position in positions), Decimal(0))
    return {
        "total_positions": len(positions),
        "total_unrealized_pnl": total_pnl,
        "total_unrealized_pnl_pct": pnl_pct_of_balance(total_pnl, total_balance),
        "positions": positions,
        "last_updated_at": max((position.last_updated_at for position in positions), default=None),
    }


async def find_position(session: AsyncSession, position_id: int) -> BrokerPosition | None:
    return await session.get(BrokerPosition, position_id)
