"""The snapshot a bridge sends, validated whole before anything is stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from tradeguard.bodies import Location, RequestBody, invalid_fields
from tradeguard.domain.instruments import normalize_symbol
from tradeguard.domain.model import (
    MAX_COMMENT_LENGTH,
    MAX_MAGIC,
    BrokerPosition,
    ClosedDeal,
    CloseReason,
    Quote,
    Side,
)
from tradeguard.values import ExternalId, Numeric, SentTime, ServerClock, printable_text, text

MAX_POSITIONS = 1000
MAX_QUOTES = 500
MAX_CLOSED_DEALS = 1000
ACCOUNT_CURRENCY = "account_currency"


def _zero_means_none(value):
    # MetaTrader reports "no stop loss / take profit" as 0.0.
    return None if value in (0, "0", 0.0) else value


Positive = Annotated[Numeric, Field(gt=0)]
OptionalLevel = Annotated[Positive | None, BeforeValidator(_zero_means_none)]
# Strict: `true` and `"1234"` name no expert.
Magic = Annotated[int, Field(ge=0, le=MAX_MAGIC, strict=True)]
Symbol = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#\-]+$"), AfterValidator(normalize_symbol)
]


class PositionIn(RequestBody):
    ticket: ExternalId
    symbol: Symbol
    side: Literal["buy", "sell"]
    volume: Positive
    open_price: Positive
    current_price: Positive
    stop_loss: OptionalLevel = None
    take_profit: OptionalLevel = None
    profit: Numeric
    swap: Numeric = Decimal(0)
    commission: Numeric = Decimal(0)
    opened_at: SentTime
    magic: Magic | None = Field(
        None,
        description="the magic number of the expert that opened it; 0: no expert (MT5 reports a trade placed by hand with 0); absent or null: not known",
    )
    comment: printable_text(MAX_COMMENT_LENGTH) | None = Field(
        None, description="the opening order's comment or client order id; absent or null: not known"
    )

    def to_domain(self) -> BrokerPosition:
        return BrokerPosition(
            ticket=self.ticket,
            symbol=self.symbol,
            side=Side(self.side),
            volume=self.volume,
            open_price=self.open_price,
            current_price=self.current_price,
            opened_at=self.opened_at,
            profit=self.profit,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            swap=self.swap,
            commission=self.commission,
            magic=self.magic,
            comment=self.comment,
        )


class QuoteIn(RequestBody):
    symbol: Symbol
    bid: Positive
    ask: Positive

    @model_validator(mode="after")
    def _ask_not_below_bid(self) -> QuoteIn:
        if self.ask < self.bid:
            problem = f"{self.symbol} ask {self.ask} is below bid {self.bid}"
            raise invalid_fields(QuoteIn, [(("ask",), problem, self.ask)])
        return self

    def to_domain(self) -> Quote:
        return Quote(symbol=self.symbol, bid=self.bid, ask=self.ask)


class ClosedDealIn(RequestBody):
    ticket: ExternalId
    deal_id: ExternalId | None = None
    close_price: Positive
    profit: Numeric
    swap: Numeric = Decimal(0)
    commission: Numeric = Decimal(0)
    closed_at: SentTime
    reason: CloseReason

    def to_domain(self) -> ClosedDeal:
        return ClosedDeal(
            ticket=self.ticket,
            deal_id=self.deal_id,
            close_price=self.close_price,
            profit=self.profit,
            swap=self.swap,
            commission=self.commission,
            closed_at=self.closed_at,
            reason=self.reason,
        )


class SnapshotIn(RequestBody):
    taken_at: SentTime
    balance: Numeric
    equity: Numeric
    margin: Annotated[Numeric, Field(ge=0)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3,6}$")] | None = None
    positions: Annotated[list[PositionIn], Field(max_length=MAX_POSITIONS)] = []
    quotes: Annotated[list[QuoteIn], Field(max_length=MAX_QUOTES)] = []
    closed_deals: Annotated[list[ClosedDealIn], Field(max_length=MAX_CLOSED_DEALS)] = []

    @field_validator("currency")
    @classmethod
    def _the_account_s_currency(cls, currency: str | None, info: ValidationInfo) -> str | None:
        account_currency = (info.context or {}).get(ACCOUNT_CURRENCY)
        if account_currency is None:
            raise TypeError("a snapshot is validated with the account's currency: use parse_snapshot")
        if currency is not None and currency != account_currency:
            raise ValueError(
                f"the snapshot is in {currency} but its account is in {account_currency}: its balance, "
                "equity and profits would be compared with the account's as if in the same currency"
            )
        return currency

    @model_validator(mode="after")
    def _unique_tickets_and_symbols(self) -> SnapshotIn:
        problems = [
            *_repeated("positions", "ticket", [position.ticket for position in self.positions]),
            *_repeated("quotes", "symbol", [quote.symbol for quote in self.quotes]),
        ]
        if problems:
            raise invalid_fields(SnapshotIn, problems)
        return self


def _repeated(items: str, field: str, values: list[str]) -> list[tuple[Location, str, str]]:
    """Each value met again, at its place, naming where it was first met."""
    first: dict[str, int] = {}
    problems = []
    for index, value in enumerate(values):
        if value in first:
            problem = f"{field} {value} appears twice (also {items}.{first[value]}.{field})"
            problems.append(((items, index, field), problem, value))
        first.setdefault(value, index)
    return problems


def parse_snapshot(body: bytes, *, clock: ServerClock, account_currency: str) -> SnapshotIn:
    """The snapshot in `body`, checked against the server's clock and the account it is for."""
    return SnapshotIn.model_validate_json(body, context=clock.context(**{ACCOUNT_CURRENCY: account_currency}))


class AcknowledgementIn(RequestBody):
    status: Literal["executed", "failed", "unknown"] = Field(
        description="executed: the broker closed it; failed: the broker refused; "
        "unknown: the outcome was lost (the next snapshot decides)"
    )
    detail: text(500) | None = None
    close_price: Positive | None = None
    profit: Numeric | None = None
