"""The deployment's instrument overrides, as the domain's instrument table."""

from __future__ import annotations

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
