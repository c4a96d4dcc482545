"""The body of `POST /accounts/{id}/trades`: a trade the platform sent, as `ingest.trades` records it."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from tradeguard.bodies import RequestBody
from tradeguard.domain.instruments import normalize_symbol
from tradeguard.domain.model import Side
from tradeguard.values import ExternalId, Numeric, SentTime, text

PositiveDecimal = Annotated[Numeric, Field(gt=0)]
Reference = text(64, min_length=1) | None


class TradeIn(RequestBody):
    """A trade the platform sent to the account, as reconciliation will expect to find it on the broker.

    `symbol` is any broker symbol of letters, digits and `._-`, stored upper-cased
    (`normalize_symbol`). No instrument list gates it: every such symbol is known or
    learnable, since a symbol without a per-deployment override gets the conventional pip
    and contract size of `domain.instruments.default_instrument` (FX, JPY pairs, metals,
    crypto, anything else 1.0).

    Prices and volumes are exact decimals, as JSON numbers or numeric strings.
    """

    trade_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    symbol: Annotated[
        str,
        Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$"),
        AfterValidator(normalize_symbol),
    ]
    side: Side
    volume: PositiveDecimal
    entry_price: PositiveDecimal
    stop_loss: PositiveDecimal | None = None
    take_profit: PositiveDecimal | None = None
    ticket: ExternalId | None = None
    signal_id: Reference = None
    approval_id: Reference = None
    opened_at: SentTime | None = Field(
        default=None,
        description="With a time zone; at most TRADEGUARD_CLOCK_SKEW_TOLERANCE_SECONDS ahead of the server's clock.",
    )

    @field_validator("stop_loss", "take_profit")
    @classmethod
    def _protects_the_right_side_of_entry(cls, level: Decimal | None, info: ValidationInfo) -> Decimal | None:
        side, entry = info.data.get("side"), info.data.get("entry_price")
        # Missing from data when invalid themselves; their own error already names them.
        if level is None or side is None or entry is None:
            return level
        below_entry = (info.field_name == "stop_loss") == (side is Side.BUY)
        if below_entry and not level < entry:
            raise ValueError(f"must be below entry_price {entry} for a {side.value}")
        if not below_entry and not level > entry:
            raise ValueError(f"must be above entry_price {entry} for a {side.value}")
        return level
