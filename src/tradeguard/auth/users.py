"""Creating and changing users, and checking their passwords."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.auth.credentials import credentials_changed
from tradeguard.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from tradeguard.auth.tokens import ROLES
from tradeguard.cache import ResponseCache
from tradeguard.errors import Conflict, InvalidInput, NotFound
from tradeguard.store.models import User


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_user(session: AsyncSession, *, email: str, password: str, role: str, now: datetime) -> User:
    email = normalize_email(email)
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise InvalidInput(f"not an email address: {email!r}")
    _check_role(role)
    user = User(
        email=email,
        password_hash=await _hashed(password),
        role=role,
        is_active=True,
        created_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} already exists") from exc
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


async def deactivate_user(session: AsyncSession, cache: ResponseCache, email: str) -> User:
    """The user can no longer sign in, and their tokens are refused from their next request on."""
    user = await _user(session, email)
    user.is_active = False
    return await _end_credentials_change(session, cache, user)


async def activate_user(session: AsyncSession, cache: ResponseCache, email: str) -> User:
    """The user can sign in again; tokens issued before they were deactivated stay refused."""
    user = await _user(session, email)
    user.is_active = True
    return await _end_credentials_change(session, cache, user)


async def set_role(session: AsyncSession, cache: ResponseCache, email: str, role: str) -> User:
    """The new role applies to the tokens issued from now on; older ones are refused."""
    _check_role(role)
    user = await _user(session, email)
    user.role = role
    return await _end_credentials_change(session, cache, user)


async def set_password(session: AsyncSession, cache: ResponseCache, email: str, password: str) -> User:
    """Tokens issued with the old password are refused from their next request on."""
    password_hash = await _hashed(password)
    user = await _user(session, email)
    user.password_hash = password_hash
    return await _end_credentials_change(session, cache, user)


async def _end_credentials_change(session: AsyncSession, cache: ResponseCache, user: User) -> User:
    """Commit a change of what the user's tokens vouch for, then make every process refuse the older tokens."""
    user.credentials_version += 1
    await session.commit()
    await credentials_changed(cache, user.id)
    return user


async def _user(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"no user with email {normalize_email(email)}")
    return user


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")


async def _hashed(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    # Argon2 is deliberately slow; off the event loop it does not stall other requests.
    return await asyncio.to_thread(hash_password, password)


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User | None:
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    hash_to_check = user.password_hash if user is not None and user.is_active else None
    # Argon2 is deliberately slow; off the event loop it does not stall other requests.
    if not await asyncio.to_thread(verify_password, hash_to_check, password):
        return None
    return user
