"""Bridge devices: created with a secret shown once, stored encrypted, revocable.

The server must recompute each request's HMAC, so it needs the secret itself, not a hash of it:
secrets are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256) under the server's
`TRADEGUARD_SECRET_KEY`. A database dump alone does not reveal them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.errors import NotFound
from tradeguard.store.models import Account, Device


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """A device whose signature checked out, and the account it speaks for."""

    device_id: str
    account_id: int
    owner_id: int


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """What never changes about a device: its account, that account's owner and currency, and its secret.

    Revocation does change, so it is never part of this: it is checked in the database on every
    request (see `authentication.verify_known_device`).
    """

    identity: DeviceIdentity
    secret: str
    currency: str
    """The account's currency, fixed when the account is created: what its snapshots are validated against."""


class SecretKeyMismatch(Exception):
    """A stored device secret does not open under this server's key: the deployment's
    TRADEGUARD_SECRET_KEY differs from the one it was sealed with (a host set up apart, a key
    rotated without re-registering devices). Nothing the bridge can fix."""


class DeviceSecrets:
    """Encrypts new secrets and decrypts stored ones, and remembers the devices this process has seen."""

    def __init__(self, key: str, *, max_known: int = 50_000) -> None:
        self._fernet = Fernet(key.encode())
        self._known: dict[str, KnownDevice] = {}
        self._max_known = max_known

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyMismatch(
                "this server's TRADEGUARD_SECRET_KEY cannot open a stored device secret"
            ) from None

    def known(self, device_id: str) -> KnownDevice | None:
        return self._known.get(device_id)

    def remember(self, device: Row) -> KnownDevice:
        """`device` is a row of `active_device`; decrypting its secret is the costly part."""
        known = self._known.get(device.device_id)
        if known is None:
            known = KnownDevice(
                DeviceIdentity(device.device_id, device.account_id, device.owner_id),
                self.open(device.secret_ciphertext),
                device.currency,
            )
            if len(self._known) >= self._max_known:
                del self._known[next(iter(self._known))]
            self._known[device.device_id] = known
        return known


async def create_device(
    session: AsyncSession, account: Account, device_secrets: DeviceSecrets, now: datetime
) -> tuple[Device, str]:
    secret = secrets.token_urlsafe(32)
    device = Device(
        account_id=account.id,
        device_id=f"dev_{secrets.token_hex(8)}",
        secret_ciphertext=device_secrets.seal(secret),
        created_at=now,
    )
    session.add(device)
    await session.flush()
    return device, secret


async def list_devices(session: AsyncSession, account: Account) -> list[Device]:
    query = select(Device).where(Device.account_id == account.id).order_by(Device.id)
    return list((await session.scalars(query)).all())


async def revoke_device(session: AsyncSession, account: Account, device_id: str, now: datetime) -> Device:
    device = await session.scalar(
        select(Device).where(Device.account_id == account.id, Device.device_id == device_id)
    )
    if device is None:
        raise NotFound(f"device {device_id} not found")
    if device.revoked_at is None:
        device.revoked_at = now
    return device


_devices = Device.__table__
_accounts = Account.__table__
_ACTIVE_DEVICE = (
    select(
        _devices.c.device_id,
        _devices.c.account_id,
        _devices.c.secret_ciphertext,
        _accounts.c.owner_id,
        _accounts.c.currency,
    )
    .join_from(_devices, _accounts, _accounts.c.id == _devices.c.account_id)
    .where(_devices.c.device_id == bindparam("device_id"), _devices.c.revoked_at.is_(None))
)


async def active_device(session: AsyncSession, device_id: str) -> Row | None:
    """The device's id, account, secret ciphertext, account owner and currency, unless unknown or revoked.

    A Core statement: every signed request runs it, and ORM entities would cost more than the query.
    """
    return (await session.execute(_ACTIVE_DEVICE, {"device_id": device_id})).first()
