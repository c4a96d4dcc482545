"""Markets for the simulated broker's tests, in which nothing moves unless the test moves it."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

from tradeguard.bridges.simulator.market import SYMBOLS, Market


def quiet_market(**bids: str) -> Market:
    """A market that does not move by itself and has no spread, so every price in a test is the one set."""
    specs = {
        symbol: replace(
            spec, opening_bid=Decimal(bids.get(symbol, spec.opening_bid)), spread_points=0, step_points=0
        )
        for symbol, spec in SYMBOLS.items()
    }
    return Market(random.Random(0), specs)
