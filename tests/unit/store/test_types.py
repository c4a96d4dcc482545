"""A NUMERIC(28, 10) read back is the number as sent, not the column's padded form."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tradeguard.store.types import canonical_decimal

_LIMIT = Decimal(10**18) - Decimal("1E-10")
# What PostgreSQL returns for the column: every value padded to ten places.
column_values = st.decimals(
    min_value=-_LIMIT, max_value=_LIMIT, places=10, allow_nan=False, allow_infinity=False
).map(lambda value: value.quantize(Decimal("1E-10")))


@given(column_values)
def test_canonical_decimal_keeps_the_value_drops_padding_zeros_and_never_a_positive_exponent(value):
    canonical = canonical_decimal(value)
    sign, digits, exponent = canonical.as_tuple()
    assert canonical == value
    assert exponent <= 0
    if exponent < 0:
        assert digits[-1] != 0


@given(column_values)
def test_canonical_decimal_writes_a_whole_number_with_exponent_zero_and_is_idempotent(value):
    canonical = canonical_decimal(value)
    if value == value.to_integral_value():
        assert canonical.as_tuple().exponent == 0
    assert canonical_decimal(canonical).as_tuple() == canonical.as_tuple()


def test_canonical_decimal_reads_the_column_as_written():
    assert str(canonical_decimal(Decimal("1.2300000000"))) == "1.23"
    assert str(canonical_decimal(Decimal("100.0000000000"))) == "100"
    assert str(canonical_decimal(Decimal("0E-10"))) == "0"
    assert str(canonical_decimal(Decimal("-0.5000000000"))) == "-0.5"
