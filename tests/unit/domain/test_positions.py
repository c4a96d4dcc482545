"""What a new reading of a position changes: a steady snapshot moves only the market's fields."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.model import BrokerPosition, Side
from tradeguard.domain.positions import MARKET_FIELDS, moved_with_the_market_only

STORED = BrokerPosition(
    ticket="7",
    symbol="EURUSD",
    side=Side.BUY,
    volume=Decimal("0.10"),
    open_price=Decimal("1.08500"),
    current_price=Decimal("1.08600"),
    opened_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    profit=Decimal("10.00"),
    stop_loss=Decimal("1.08000"),
    take_profit=None,
    swap=Decimal("-0.20"),
    commission=Decimal("-0.70"),
    magic=1234,
    comment="copier T-1",
)


def test_the_same_reading_moved_nothing_but_the_market():
    assert moved_with_the_market_only(STORED, STORED)


@pytest.mark.parametrize(
    "moved",
    [
        {"current_price": Decimal("1.08700")},
        {"profit": Decimal("20.00")},
        {"swap": Decimal("-0.40")},
        {"commission": Decimal("-1.40")},
        {"current_price": Decimal("1.08400"), "profit": Decimal("-10.00"), "swap": Decimal("-0.40")},
    ],
)
def test_price_profit_swap_and_commission_are_the_market_s(moved):
    assert moved_with_the_market_only(STORED, replace(STORED, **moved))


@pytest.mark.parametrize(
    "changed",
    [
        {"symbol": "GBPUSD"},
        {"side": Side.SELL},
        {"volume": Decimal("0.05")},
        {"open_price": Decimal("1.08510")},
        {"opened_at": datetime(2026, 12, 1, 9, 31, tzinfo=UTC)},
        {"stop_loss": None},
        {"stop_loss": Decimal("1.07900")},
        {"take_profit": Decimal("1.09000")},
        {"magic": 0},
        {"magic": None},
        {"comment": "copier T-2"},
        {"comment": ""},
        {"comment": None},
        {"volume": Decimal("0.05"), "current_price": Decimal("1.08700")},
    ],
)
def test_anything_else_is_more_than_the_market(changed):
    assert not moved_with_the_market_only(STORED, replace(STORED, **changed))


def test_amounts_compare_as_the_numbers_the_columns_store():
    padded = replace(STORED, volume=Decimal("0.1000000000"), open_price=Decimal("1.085"))

    assert moved_with_the_market_only(STORED, padded)


def test_the_market_fields_are_fields_of_a_position():
    assert set(MARKET_FIELDS) <= set(BrokerPosition.__dataclass_fields__)


_amounts = st.sampled_from(
    [Decimal("1.085"), Decimal("1.0850"), Decimal("1.086"), Decimal("0.1"), Decimal("-0.2")]
)
_levels = st.none() | _amounts
_readings = st.builds(
    BrokerPosition,
    ticket=st.sampled_from(["7", "8"]),
    symbol=st.sampled_from(["EURUSD", "GBPUSD"]),
    side=st.sampled_from(Side),
    volume=_amounts,
    open_price=_amounts,
    current_price=_amounts,
    opened_at=st.sampled_from(
        [datetime(2026, 12, 1, 9, 30, tzinfo=UTC), datetime(2026, 12, 1, 9, 31, tzinfo=UTC)]
    ),
    profit=_amounts,
    stop_loss=_levels,
    take_profit=_levels,
    swap=_amounts,
    commission=_amounts,
    magic=st.sampled_from([None, 0, 1234]),
    comment=st.sampled_from([None, "", "copier T-1"]),
)


_FIELDS = sorted(BrokerPosition.__dataclass_fields__)


@given(_readings, _readings, st.sets(st.sampled_from(_FIELDS)))
def test_moved_with_the_market_only_means_equal_once_the_market_fields_are_the_stored_ones(
    stored, other, read_anew
):
    now = replace(stored, **{name: getattr(other, name) for name in read_anew})
    market_as_stored = replace(now, **{name: getattr(stored, name) for name in MARKET_FIELDS})

    assert moved_with_the_market_only(stored, now) == (market_as_stored == stored)
