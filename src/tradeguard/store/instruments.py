"""The deployment's instrument overrides, as the domain's instrument table."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.domain.instruments import Instrument, InstrumentTable, normalize_symbol
from tradeguard.store.models import InstrumentOverride


async def load_instrument_table(session: AsyncSession) -> InstrumentTable:
    rows = (await session.scalars(select(InstrumentOverride))).all()
    return InstrumentTable(
        {
            normalize_symbol(row.symbol): Instrument(
                normalize_symbol(row.symbol), row.pip_size, row.contract_size
            )
            for row in rows
        }
    )


async def set_instrument(
    session: AsyncSession, symbol: str, *, pip_size: Decimal, contract_size: Decimal
) -> None:
    name = normalize_symbol(symbol)
    row = await session.get(InstrumentOverride, name)
    if row is None:
        session.add(InstrumentOverride(symbol=name, pip_size=pip_size, contract_size=contract_size))
    else:
        row.pip_size = pip_size
        row.contract_size = contract_size
