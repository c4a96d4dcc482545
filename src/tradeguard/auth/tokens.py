"""HS256 access tokens carrying the user id and role, so authorising a read needs no database."""

from __future__ import annotations

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

    @property
    def sees_every_account(self) -> bool:
        return self.role in PRIVILEGED_ROLES


def issue_token(principal: Principal, *, secret: str, now: datetime, lifetime: timedelta) -> str:
    claims = {
        "sub": str(principal.user_id),
        "role": principal.role,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, *, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat"]})
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("invalid token") from exc
    role = claims.get("role")
    subject = claims["sub"]
    if role not in ROLES or not isinstance(subject, str) or not subject.isdigit():
        raise NotAuthenticated("invalid token")
    return Principal(user_id=int(subject), role=role)
