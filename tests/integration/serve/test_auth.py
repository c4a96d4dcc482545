"""Signing in with a password, and who gets past the bearer-token check (and who does not)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.support.builders import PASSWORD, sign_up
from tradeguard.auth.tokens import ALGORITHM, Principal, issue_token
from tradeguard.store.models import User

TOKEN_URL = "/api/v1/auth/token"
ME_URL = "/api/v1/me"
WRONG_CREDENTIALS = "wrong email or password"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: int | str, role: str = "user", *, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    return {
        "sub": str(user_id),
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }


async def _me_with(api, token: str):
    return await api.http.get(ME_URL, headers={"Authorization": f"Bearer {token}"})


def _assert_rejected(response, detail: str | None = None) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["detail"], body
    if detail is not None:
        assert body["detail"] == detail


async def test_right_password_issues_a_bearer_token_for_the_user(api):
    caller = await sign_up(api)

    response = await api.http.post(TOKEN_URL, data={"username": caller.email, "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == api.services.settings.jwt_expires_seconds
    claims = jwt.decode(body["access_token"], api.services.jwt_secret, algorithms=[ALGORITHM])
    assert claims["sub"] == str(caller.user_id)
    assert claims["role"] == "user"
    assert claims["exp"] - claims["iat"] == body["expires_in"]


async def test_email_is_matched_case_insensitively_at_sign_in(api):
    caller = await sign_up(api)

    response = await api.http.post(
        TOKEN_URL, data={"username": f"  {caller.email.upper()} ", "password": PASSWORD}
    )

    assert response.status_code == 200, response.text


async def test_wrong_password_and_unknown_email_get_the_same_401(api):
    caller = await sign_up(api)

    wrong_password = await api.http.post(
        TOKEN_URL, data={"username": caller.email, "password": PASSWORD + "!"}
    )
    unknown_email = await api.http.post(
        TOKEN_URL, data={"username": "nobody@example.com", "password": PASSWORD}
    )

    _assert_rejected(wrong_password, WRONG_CREDENTIALS)
    _assert_rejected(unknown_email, WRONG_CREDENTIALS)
    assert "access_token" not in wrong_password.json()


async def test_deactivated_user_cannot_get_a_token(api):
    caller = await sign_up(api)
    async with api.session() as session:
        user = await session.get(User, caller.user_id)
        user.is_active = False
        await session.commit()

    response = await api.http.post(TOKEN_URL, data={"username": caller.email, "password": PASSWORD})

    _assert_rejected(response, WRONG_CREDENTIALS)


async def test_me_returns_the_caller(api):
    caller = await sign_up(api, "admin")

    response = await caller.get(ME_URL)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == caller.user_id
    assert body["email"] == caller.email
    assert body["role"] == "admin"
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_me_without_a_token_is_401(api):
    response = await api.http.get(ME_URL)

    _assert_rejected(response)


@pytest.fixture
async def victim(sqlite_api):
    return await sign_up(sqlite_api)


async def test_junk_token_is_401(sqlite_api):
    _assert_rejected(await _me_with(sqlite_api, "not-a-jwt"), "invalid token")


async def test_token_with_a_tampered_signature_is_401(sqlite_api, victim):
    header, payload, signature = victim.token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    tampered = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"

    _assert_rejected(await _me_with(sqlite_api, tampered), "invalid token")


async def test_token_with_a_tampered_payload_is_401(sqlite_api, victim):
    header, _payload, signature = victim.token.split(".")
    escalated = _b64url(json.dumps(_claims(victim.user_id, "owner")).encode())

    _assert_rejected(await _me_with(sqlite_api, f"{header}.{escalated}.{signature}"), "invalid token")


async def test_token_signed_with_another_secret_is_401(sqlite_api, victim):
    token = issue_token(
        Principal(victim.user_id, "user"),
        secret="another-secret-" + "y" * 32,
        now=datetime.now(UTC),
        lifetime=timedelta(hours=1),
    )

    _assert_rejected(await _me_with(sqlite_api, token), "invalid token")


async def test_expired_token_is_401(sqlite_api, victim):
    token = issue_token(
        Principal(victim.user_id, "user"),
        secret=sqlite_api.services.jwt_secret,
        now=datetime.now(UTC) - timedelta(hours=2),
        lifetime=timedelta(hours=1),
    )

    _assert_rejected(await _me_with(sqlite_api, token), "token expired")


async def test_unsigned_alg_none_token_is_401(sqlite_api, victim):
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(_claims(victim.user_id)).encode())

    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        _assert_rejected(await _me_with(sqlite_api, token), "invalid token")


async def test_token_with_a_non_numeric_subject_is_401(sqlite_api):
    token = jwt.encode(_claims("admin"), sqlite_api.services.jwt_secret, algorithm=ALGORITHM)

    _assert_rejected(await _me_with(sqlite_api, token), "invalid token")


async def test_token_with_an_unknown_role_is_401(sqlite_api, victim):
    token = jwt.encode(
        _claims(victim.user_id, "superuser"), sqlite_api.services.jwt_secret, algorithm=ALGORITHM
    )

    _assert_rejected(await _me_with(sqlite_api, token), "invalid token")


async def test_token_without_an_expiry_is_401(sqlite_api, victim):
    claims = _claims(victim.user_id)
    del claims["exp"]
    token = jwt.encode(claims, sqlite_api.services.jwt_secret, algorithm=ALGORITHM)

    _assert_rejected(await _me_with(sqlite_api, token), "invalid token")


async def test_a_correctly_signed_token_is_accepted(sqlite_api, victim):
    """The control for the cases above: the same construction with the right key gets through."""
    token = jwt.encode(_claims(victim.user_id), sqlite_api.services.jwt_secret, algorithm=ALGORITHM)

    response = await _me_with(sqlite_api, token)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == victim.user_id
