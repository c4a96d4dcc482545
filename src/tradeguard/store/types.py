"""Column types that keep money exact and time in UTC on every supported database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.types import TypeDecorator

_ONE = Decimal(1)


def canonical_decimal(value: Decimal) -> Decimal:
    """Drop the column's padding zeros (1.2300000000 → 1.23) without turning 100 into 1E+2.

    Every decimal read runs this, so it asks one comparison rather than building `as_tuple()`:
    a whole number is written with exponent 0, anything else normalized.
    """
    if value == value.to_integral_value():
        return value.quantize(_ONE)
    return value.normalize()


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC where the database has it; text on SQLite, whose numbers are binary floats."""

    impl = Numeric(28, 10)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(28, 10, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal):
            value = Decimal(str(value))
        if dialect.name == "sqlite":
            return format(value.normalize(), "f")
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return canonical_decimal(value if isinstance(value, Decimal) else Decimal(value))


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite stores naive text, so the zone is restored on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
