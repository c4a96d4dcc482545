"""The kinds of value a request carries, each checked once, bounded to what the database holds.

Every body and parameter is built from these, so a value that passes validation is stored as sent,
and one that does not is a 422 naming the field instead of a database error:

- `Text`, `text(max_length)`: PostgreSQL's text cannot hold the NUL character;
- `printable_text(max_length)`: text a person reads, without any control character;
- `Numeric`: the NUMERIC(28, 10) columns hold 18 digits before the point and 10 after;
- `UtcTime`: a time with a zone, converted to UTC, within the years 1 to 9999 that the columns and
  Python hold;
- `ExternalId`: a ticket or login as brokers and exchanges number them, stored as text;
- `SentTime`: a `UtcTime` that may not lie ahead of the server's clock (see `ServerClock`);
- `TimeZoneName`: an IANA zone name the zone database knows; `ClockTime`: a time of day as HH:MM;
- `BigInt`: the BIGINT of every id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema

from tradeguard.domain.model import has_control_character

MAX_BIGINT = 2**63 - 1
"""The largest BIGINT: a larger id cannot exist, and SQLite refuses to even compare with it."""

EXTERNAL_ID_MAX_LENGTH = 64


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def _without_control_characters(value: str) -> str:
    if has_control_character(value):
        raise ValueError("must not contain a control character (U+0000 to U+001F, U+007F to U+009F)")
    return value


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (e.g. 2026-11-25T12:00:00Z) or be unix seconds")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must lie within the years 1 to 9999 once converted to UTC") from None


def _external_id(value: Any) -> Any:
    # A bool is an int to Python, and a float may have lost digits already: neither names a ticket.
    if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, int) and value < 0):
        raise ValueError(
            "must be a non-negative integer (an MT5 ticket or login) or a non-empty string (an exchange's id)"
        )
    return str(value)


_NUL_FREE = AfterValidator(_without_nul)
Text = Annotated[str, _NUL_FREE]


def text(max_length: int, *, min_length: int = 0) -> Any:
    """`Text` of the column's length; a length given beside `Text` would lose pydantic's message about strings."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length), _NUL_FREE]


def printable_text(max_length: int) -> Any:
    """Text shown as sent, on one line: no NUL, no line break, no escape sequence."""
    return Annotated[str, Field(max_length=max_length), AfterValidator(_without_control_characters)]


Numeric = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=28, decimal_places=10)]
UtcTime = Annotated[datetime, AfterValidator(_in_utc)]
ExternalId = Annotated[
    text(EXTERNAL_ID_MAX_LENGTH, min_length=1),
    BeforeValidator(_external_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "minLength": 1, "maxLength": EXTERNAL_ID_MAX_LENGTH},
            ],
            "description": "An integer (MT5) or a string (exchanges), stored and compared as a string.",
        }
    ),
]
"""Tickets and logins: MT5 numbers them, exchanges name them; `123` and `"123"` are the same one."""
BigInt = Annotated[int, Field(ge=0, le=MAX_BIGINT)]

SERVER_CLOCK = "server_clock"


@dataclass(frozen=True, slots=True)
class ServerClock:
    """The server's clock when a request arrived, and how far ahead of it a sender's clock may run.

    Bodies holding a `SentTime` are validated with `context=clock.context()`: a time from the future
    would outrank every true one after it (the newest snapshot wins), so it is refused.
    """

    now: datetime
    tolerance: timedelta

    def context(self, **more: Any) -> dict[str, Any]:
        return {SERVER_CLOCK: self, **more}

    def lead(self, value: datetime) -> timedelta:
        """How far `value` lies ahead of the server's clock (negative: behind it)."""
        return value - self.now


def _not_ahead_of_the_server(value: datetime, info: ValidationInfo) -> datetime:
    clock = (info.context or {}).get(SERVER_CLOCK)
    if not isinstance(clock, ServerClock):
        raise TypeError("a body with a SentTime is validated with context=ServerClock(...).context()")
    lead = clock.lead(value)
    if lead > clock.tolerance:
        raise ValueError(
            f"{value.isoformat()} is {lead.total_seconds():.3f} s ahead of the server's clock "
            f"({clock.now.isoformat()}), more than the {clock.tolerance.total_seconds():g} s allowed: "
            "send times in UTC (a MetaTrader bridge subtracts the broker server's UTC offset) "
            "from a clock kept synchronized"
        )
    return value


SentTime = Annotated[UtcTime, AfterValidator(_not_ahead_of_the_server)]


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _clock_time(value: str) -> str:
    try:
        return time.fromisoformat(value).strftime("%H:%M")
    except ValueError as exc:
        raise ValueError("must be a time of day as HH:MM") from exc


TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]
ClockTime = Annotated[str, AfterValidator(_clock_time)]
