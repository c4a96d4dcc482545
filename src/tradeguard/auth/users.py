"""Creating and changing users, and checking their passwords."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from tradeguard.auth.tokens import ROLES
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
        password_hash=await _hash(password),
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


async def deactivate_user(session: AsyncSession, email: str) -> User:
    user = await _user(session, email)
    user.is_active = False
    return user


async def activate_user(session: AsyncSession, email: str) -> User:
    user = await _user(session, email)
    user.is_active = True
    return user


async def set_role(session: AsyncSession, email: str, role: str) -> User:
    _check_role(role)
    user = await _user(session, email)
    user.role = role
    return user


async def set_password(session: AsyncSession, email: str, password: str) -> User:
    user = await _user(session, email)
    user.password_hash = await _hash(password)
    return user


async def _user(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"no user with email {normalize_email(email)}")
    return user


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")


async def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return await asyncio.to_thread(hash_password, password)


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User | None:
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    hash_to_check = user.password_hash if user is not None and user.is_active else None
    # Argon2 is deliberately slow; off the event loop it does not stall other requests.
    if not await asyncio.to_thread(verify_password, hash_to_check, password):
        return None
    return user
