"""Expected trades: what the platform sent each account, recorded once per trade_id and closed on its word.

Reconciliation compares the open ones with the broker's positions, so every change here
changes what the account's read models should say; callers commit, then invalidate the
account's cache entries.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.errors import Conflict, NotFound
from tradeguard.ingest.trade_body import TradeIn
from tradeguard.queries.read_models import TradeStatus
from tradeguard.store.models import Account, ExpectedTrade
from tradeguard.store.types import canonical_decimal

OPEN = "open"
CLOSED = "closed"


async def record_expected_trade(
    session: AsyncSession, account: Account, body: TradeIn, now: datetime
) -> tuple[ExpectedTrade, bool]:
    """Store the trade, or find it stored already: `(trade, created)`.

    Idempotent on `trade_id` per account. Sending the same trade again (the same values,
    however the decimals and time zone are written) answers the stored trade; a different
    body under a stored trade_id is a `Conflict`. When two requests insert the same trade_id
    at once, the unique constraint picks the winner and the loser answers as a replay.
    """
    account_id = account.id
    fields = _canonical_fields(body)
    digest = _body_digest(fields)

    stored = await _find(session, account_id, body.trade_id)
    if stored is not None:
        return _same_or_conflict(stored, digest), False

    trade = ExpectedTrade(account_id=account_id, received_at=now, status=OPEN, body_digest=digest, **fields)
    session.add(trade)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        stored = await _find(session, account_id, body.trade_id)
        if stored is None:
            raise
        # The rollback expired the account, and the caller still reads it to invalidate the cache.
        await session.refresh(account)
        return _same_or_conflict(stored, digest), False
    return trade, True


async def close_expected_trade(
    session: AsyncSession, account: Account, trade_id: str, now: datetime
) -> ExpectedTrade:
    """Mark the trade closed by the platform; closing it again keeps the first `closed_at`."""
    # A conditional update rather than read-then-write, so two closes at once cannot both stamp it.
    await session.execute(
        update(ExpectedTrade)
        .where(
            ExpectedTrade.account_id == account.id,
            ExpectedTrade.trade_id == trade_id,
            ExpectedTrade.status == OPEN,
        )
        .values(status=CLOSED, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    trade = await _find(session, account.id, trade_id)
    if trade is None:
        raise NotFound(f"trade {trade_id} not found on account {account.id}")
    return trade


async def list_expected_trades(
    session: AsyncSession,
    account: Account,
    *,
    status: TradeStatus | None,
    limit: int,
    before_id: int | None,
) -> list[ExpectedTrade]:
    """Newest first; `before_id` is the last id of the previous page."""
    query = (
        select(ExpectedTrade)
        .where(ExpectedTrade.account_id == account.id)
        .order_by(ExpectedTrade.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(ExpectedTrade.status == status)
    if before_id is not None:
        query = query.where(ExpectedTrade.id < before_id)
    return list((await session.scalars(query)).all())


def _body_digest(fields: dict) -> str:
    """SHA-256 of the canonical JSON of a trade's fields: equal for equal trades, however they were written."""
    canonical = orjson.dumps(fields, default=_decimal_text, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _canonical_fields(body: TradeIn) -> dict:
    """The trade's columns, written one way only: "1.10" and 1.1 are one price, 14:00+02:00 and 12:00Z one time."""
    return {
        "trade_id": body.trade_id,
        "symbol": body.symbol,
        "side": body.side.value,
        "volume": canonical_decimal(body.volume),
        "entry_price": canonical_decimal(body.entry_price),
        "stop_loss": _canonical_or_none(body.stop_loss),
        "take_profit": _canonical_or_none(body.take_profit),
        "ticket": body.ticket,
        "signal_id": body.signal_id,
        "approval_id": body.approval_id,
        "opened_at": body.opened_at.astimezone(UTC) if body.opened_at is not None else None,
    }


def _canonical_or_none(value: Decimal | None) -> Decimal | None:
    return canonical_decimal(value) if value is not None else None


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _same_or_conflict(stored: ExpectedTrade, digest: str) -> ExpectedTrade:
    if stored.body_digest != digest:
        raise Conflict(
            f"trade {stored.trade_id} is already recorded on account {stored.account_id} with a different body; "
            "a trade_id names one trade, so a changed trade needs a new trade_id"
        )
    return stored


async def _find(session: AsyncSession, account_id: int, trade_id: str) -> ExpectedTrade | None:
    return await session.scalar(
        select(ExpectedTrade).where(
            ExpectedTrade.account_id == account_id, ExpectedTrade.trade_id == trade_id
        )
    )
