"""The kinds of value a request carries, each checked once, bounded to what the database holds.

Every body and parameter is built from these, so a value that passes validation is stored as sent,
and one that does not is a 422 naming the field instead of a database error:

- `Text`: PostgreSQL's text cannot hold the NUL character;
- `Numeric`: the NUMERIC(28, 10) columns hold 18 digits before the point and 10 after;
- `UtcTime`: a time with a zone, converted to UTC, within the years 1 to 9999 that the columns and
  Python hold;
- `BigInt`: the BIGINT of every id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_BIGINT = 2**63 - 1
"""The largest BIGINT: a larger id cannot exist, and SQLite refuses to even compare with it."""


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (e.g. 2026-11-25T12:00:00Z) or be unix seconds")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must lie within the years 1 to 9999 once converted to UTC") from None


Text = Annotated[str, AfterValidator(_without_nul)]
Numeric = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=28, decimal_places=10)]
UtcTime = Annotated[datetime, AfterValidator(_in_utc)]
BigInt = Annotated[int, Field(ge=0, le=MAX_BIGINT)]
