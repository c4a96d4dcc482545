"""What a new reading of a position changes of the stored one: what the market moves, or more."""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

from tradeguard.domain.model import BrokerPosition

MARKET_FIELDS = ("current_price", "profit", "swap", "commission")
"""What moves while a position stays as it was opened: its price and what it has earned or cost so far."""

# Every other field, read as one tuple: each stored position of every snapshot is compared.
_AS_OPENED = attrgetter(*(field.name for field in fields(BrokerPosition) if field.name not in MARKET_FIELDS))


def moved_with_the_market_only(stored: BrokerPosition, now: BrokerPosition) -> bool:
    """Whether `now` differs from `stored` in `MARKET_FIELDS` at most: what a steady snapshot
    changes. Amounts compare as numbers (1.0850 is 1.085), as the columns store them."""
    return _AS_OPENED(now) == _AS_OPENED(stored)
