"""Checking a bridge's signed request: headers, clock window, device, HMAC, nonce. Every failure is 401."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.errors import NotAuthenticated
from tradeguard.ingest.devices import DeviceIdentity, DeviceSecrets, KnownDevice, active_device
from tradeguard.ingest.nonces import NonceStore
from tradeguard.ingest.signature import (
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    sign,
    signature_matches,
    timestamp_problem,
)

_NONCE = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
NONCE_USED = "nonce already used"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    path: str
    """The path with its ?query when there is one, as signed."""
    device_id: str | None
    timestamp: str | None
    nonce: str | None
    signature: str | None
    body: bytes


async def verify_device(
    session: AsyncSession,
    signed: SignedRequest,
    *,
    device_secrets: DeviceSecrets,
    nonces: NonceStore,
    now: datetime,
) -> DeviceIdentity:
    """The device behind a correctly signed, fresh, never-seen request, unless unknown or revoked.

    The nonce is claimed last, so a forged request cannot use up a real bridge's nonces.
    """
    _check_headers(signed, now)
    device = await _active_device(session, signed.device_id, device_secrets)
    return await _check_signature(session, signed, device, nonces, now)


async def verify_known_device(
    session: AsyncSession,
    signed: SignedRequest,
    *,
    device_secrets: DeviceSecrets,
    nonces: NonceStore,
    now: datetime,
) -> DeviceIdentity:
    """As `verify_device`, but a device this process has seen is not looked up again.

    Its revocation is then NOT checked here: the caller's next statement, in the same
    transaction, must refuse a revoked device (the ingest step's lock does). Every snapshot
    saves a round trip this way.
    """
    _check_headers(signed, now)
    device = device_secrets.known(signed.device_id) or await _active_device(
        session, signed.device_id, device_secrets
    )
    return await _check_signature(session, signed, device, nonces, now)


async def verify_signature(
    signed: SignedRequest,
    *,
    device_secrets: DeviceSecrets,
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    now: datetime,
) -> KnownDevice:
    """As `verify_known_device`, but neither the nonce nor the revocation is checked here.

    The caller claims the nonce (`NonceStore.claim_all`) and refuses a revoked device in the
    transaction that applies the request. A device this process has not seen yet is looked up
    in a session of its own from `sessions`.
    """
    _check_headers(signed, now)
    device = device_secrets.known(signed.device_id)
    if device is None:
        async with sessions() as session:
            device = await _active_device(session, signed.device_id, device_secrets)
    _check_hmac(signed, device)
    return device


async def _active_device(session: AsyncSession, device_id: str, device_secrets: DeviceSecrets) -> KnownDevice:
    device = await active_device(session, device_id)
    if device is None:
        raise NotAuthenticated("unknown or revoked device")
    return device_secrets.remember(device)


def _check_headers(signed: SignedRequest, now: datetime) -> None:
    headers = {
        HEADER_DEVICE: signed.device_id,
        HEADER_TIMESTAMP: signed.timestamp,
        HEADER_NONCE: signed.nonce,
        HEADER_SIGNATURE: signed.signature,
    }
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise NotAuthenticated(f"missing device signature headers: {', '.join(missing)}")
    problem = timestamp_problem(signed.timestamp, now.timestamp())
    if problem:
        raise NotAuthenticated(problem)
    if not _NONCE.match(signed.nonce):
        raise NotAuthenticated("nonce must be 8-128 characters of letters, digits and ._:-")


async def _check_signature(
    session: AsyncSession, signed: SignedRequest, device: KnownDevice, nonces: NonceStore, now: datetime
) -> DeviceIdentity:
    _check_hmac(signed, device)
    if not await nonces.claim(session, device.identity.device_id, signed.nonce, now):
        raise NotAuthenticated(NONCE_USED)
    return device.identity


def _check_hmac(signed: SignedRequest, device: KnownDevice) -> None:
    expected = sign(device.secret, signed.method, signed.path, signed.timestamp, signed.nonce, signed.body)
    if not signature_matches(expected, signed.signature):
        raise NotAuthenticated("bad signature")
