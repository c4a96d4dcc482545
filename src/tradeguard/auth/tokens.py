"""HS256 access tokens carrying the user id, role and credentials version, so authorising a read needs no database.

Whether those credentials are still current is the question of `auth/credentials.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from tradeguard.errors import NotAuthenticated

ALGORITHM = "HS256"
ROLES = ("owner", "admin", "user")
PRIVILEGED_ROLES = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    role: str
    credentials_version: int = 0
    """The user's credentials version when the token was issued."""

    @property
    def sees_every_account(self) -> bool:
        return self.role in PRIVILEGED_ROLES


def issue_token(principal: Principal, *, secret: str, now: datetime, lifetime: timedelta) -> str:
    claims = {
        "sub": str(principal.user_id),
        "role": principal.role,
        "ver": principal.credentials_version,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _verify(token: str, secret: str) -> tuple[Principal, int]:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat"]})
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("invalid token") from exc
    role = claims.get("role")
    subject = claims["sub"]
    # Tokens issued before versions existed name none: they stand for the first version.
    version = claims.get("ver", 0)
    if role not in ROLES or not isinstance(subject, str) or not subject.isdigit():
        raise NotAuthenticated("invalid token")
    if type(version) is not int or version < 0:
        raise NotAuthenticated("invalid token")
    return Principal(user_id=int(subject), role=role, credentials_version=version), int(claims["exp"])


class TokenCache:
    """Verified tokens, remembered until they expire: a cached read then costs no signature check.

    Only tokens that verified are kept, each with its own expiry, so nothing is trusted longer than
    the token itself allows. Whether the user's credentials changed since the token was issued is
    not a property of the token: `CurrentCredentials` answers it on every request.
    """

    def __init__(self, secret: str, *, max_entries: int = 50_000, clock=time.time) -> None:
        self._secret = secret
        self._max_entries = max_entries
        self._clock = clock
        self._verified: dict[str, tuple[Principal, int]] = {}

    def read(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            principal, expires_at = known
            if self._clock() < expires_at:
                return principal
            del self._verified[token]
        principal, expires_at = _verify(token, self._secret)
        if len(self._verified) >= self._max_entries:
            self._verified.clear()
        self._verified[token] = (principal, expires_at)
        return principal
