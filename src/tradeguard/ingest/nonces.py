"""Replay refusal: each (device, nonce) is accepted once within the signature window.

Nonces are rows of `device_nonces`, inserted in the request's own transaction, with or without
Redis. A nonce kept in Redis would be unknown to the table that answers while Redis is
unreachable, and one recorded in the table during an outage unknown to Redis afterwards; in the
database, which answers every signed request anyway, a used nonce is refused whichever process
answers and whatever else is down. The insert takes the place of a round trip to Redis in a
transaction that writes anyway, and a request that fails validation does not use up its nonce.
Expired rows are deleted by the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.ingest.signature import MAX_CLOCK_SKEW_SECONDS
from tradeguard.store.models import DeviceNonce

# A timestamp may be up to the skew early or late, so a nonce must be remembered twice as long.
NONCE_LIFETIME = timedelta(seconds=2 * MAX_CLOCK_SKEW_SECONDS)

_nonces = DeviceNonce.__table__
_CLAIMED = (_nonces.c.device_id, _nonces.c.nonce)
# A batch's nonces go in as three arrays, so that one statement, compiled and prepared once,
# serves batches of every size (a VALUES list would be a statement of its own per size).
_claimed_rows = (
    func.unnest(
        bindparam("device_ids", type_=ARRAY(_nonces.c.device_id.type)),
        bindparam("nonces", type_=ARRAY(_nonces.c.nonce.type)),
        bindparam("expiries", type_=ARRAY(_nonces.c.expires_at.type)),
    )
    .table_valued("device_id", "nonce", "expires_at")
    .render_derived("claimed")
)
_CLAIM_ALL_POSTGRESQL = (
    postgresql_insert(_nonces)
    .from_select(["device_id", "nonce", "expires_at"], select(_claimed_rows))
    .on_conflict_do_nothing()
    .returning(*_CLAIMED)
)
# SQLite has no arrays: the rows are sent as one executemany, which SQLAlchemy inserts and
# returns from in batches of its own.
_CLAIM_ALL_SQLITE = sqlite_insert(_nonces).on_conflict_do_nothing().returning(*_CLAIMED)


class NonceStore(Protocol):
    async def claim(self, session: AsyncSession, device_id: str, nonce: str, now: datetime) -> bool:
        """True the first time a device presents the nonce; False on any replay."""
        ...

    async def claim_all(
        self, session: AsyncSession, claims: Sequence[tuple[str, str, datetime]]
    ) -> set[tuple[str, str]]:
        """Of the (device, nonce, now) claims, the (device, nonce) pairs presented for the first
        time, claimed in one go; a pair met twice in `claims` is claimed once."""
        ...

    async def release(self, session: AsyncSession, claims: Sequence[tuple[str, str]]) -> None:
        """Give back pairs claimed in this transaction, for requests refused after all."""
        ...


class DatabaseNonces:
    async def claim(self, session: AsyncSession, device_id: str, nonce: str, now: datetime) -> bool:
        """A concurrent replay waits on the first's row: refused once it commits, accepted if it rolls back."""
        insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(DeviceNonce)
            .values(device_id=device_id, nonce=nonce, expires_at=now + NONCE_LIFETIME)
            .on_conflict_do_nothing()
        )
        result = await session.execute(statement)
        return result.rowcount == 1

    async def claim_all(
        self, session: AsyncSession, claims: Sequence[tuple[str, str, datetime]]
    ) -> set[tuple[str, str]]:
        if session.bind.dialect.name == "postgresql":
            columns = {
                "device_ids": [device for device, _nonce, _now in claims],
                "nonces": [nonce for _device, nonce, _now in claims],
                "expiries": [now + NONCE_LIFETIME for _device, _nonce, now in claims],
            }
            rows = await session.execute(_CLAIM_ALL_POSTGRESQL, columns)
        else:
            rows = await session.execute(
                _CLAIM_ALL_SQLITE,
                [
                    {"device_id": device, "nonce": nonce, "expires_at": now + NONCE_LIFETIME}
                    for device, nonce, now in claims
                ],
            )
        return {(row.device_id, row.nonce) for row in rows}

    async def release(self, session: AsyncSession, claims: Sequence[tuple[str, str]]) -> None:
        await session.execute(
            delete(DeviceNonce).where(tuple_(DeviceNonce.device_id, DeviceNonce.nonce).in_(list(claims)))
        )


async def delete_expired_nonces(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(delete(DeviceNonce).where(DeviceNonce.expires_at < now))
    return result.rowcount
