"""Replay refusal: each (device, nonce) is accepted once within the signature window.

With Redis configured, nonces are keys with an expiry (SET NX EX). Without it, or while Redis is
unreachable, they are rows of `device_nonces`, inserted in the request's own transaction, so a
request that fails validation does not use up its nonce. Expired rows are deleted by the sweep.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.ingest.signature import MAX_CLOCK_SKEW_SECONDS
from tradeguard.store.models import DeviceNonce

log = logging.getLogger(__name__)

# A timestamp may be up to the skew early or late, so a nonce must be remembered twice as long.
NONCE_LIFETIME = timedelta(seconds=2 * MAX_CLOCK_SKEW_SECONDS)


class NonceStore(Protocol):
    async def claim(self, session: AsyncSession, device_id: str, nonce: str, now: datetime) -> bool:
        """True the first time a device presents the nonce; False on any replay."""
        ...


class DatabaseNonces:
    async def claim(self, session: AsyncSession, device_id: str, nonce: str, now: datetime) -> bool:
        insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(DeviceNonce)
            .values(device_id=device_id, nonce=nonce, expires_at=now + NONCE_LIFETIME)
            .on_conflict_do_nothing()
        )
        result = await session.execute(statement)
        return result.rowcount == 1


async def delete_expired_nonces(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(delete(DeviceNonce).where(DeviceNonce.expires_at < now))
    return result.rowcount


class RedisNonces:
    def __init__(self, client: Redis, *, namespace: str = "tg:n:") -> None:
        self._client = client
        self._namespace = namespace
        self._fallback = DatabaseNonces()
        self._failing = False

    async def claim(self, session: AsyncSession, device_id: str, nonce: str, now: datetime) -> bool:
        key = f"{self._namespace}{device_id}:{nonce}"
        try:
            claimed = await self._client.set(key, b"1", nx=True, ex=int(NONCE_LIFETIME.total_seconds()))
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("redis unreachable for nonces (%s); using the database table", exc)
                self._failing = True
            return await self._fallback.claim(session, device_id, nonce, now)
        if self._failing:
            log.warning("redis reachable again for nonces")
            self._failing = False
        return bool(claimed)
