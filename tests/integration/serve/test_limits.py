"""Request bodies: a size limit enforced before they are read, and authentication before they are parsed."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.bridging import register_follower
from tests.support.builders import sign_up
from tradeguard.ingest.signature import HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign

ACCOUNTS = "/api/v1/accounts"
NOT_JSON = b"{" + b"x" * 200_000


def _limit(api) -> int:
    return api.services.settings.max_body_bytes


def _assert_too_large(response) -> None:
    assert response.status_code == 413, response.text
    assert "request body larger than" in response.json()["detail"]


async def test_body_declared_larger_than_the_limit_is_refused_with_413(sqlite_api):
    caller = await sign_up(sqlite_api)

    response = await sqlite_api.http.post(
        ACCOUNTS,
        content=b"x" * (_limit(sqlite_api) + 1),
        headers={**caller.headers, "Content-Type": "application/json"},
    )

    _assert_too_large(response)


async def test_chunked_body_growing_past_the_limit_is_refused_with_413(sqlite_api):
    caller = await sign_up(sqlite_api)
    chunk = b"x" * 65_536
    chunks = _limit(sqlite_api) // len(chunk) + 2

    async def body():
        for _ in range(chunks):
            yield chunk

    response = await sqlite_api.http.post(
        ACCOUNTS, content=body(), headers={**caller.headers, "Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    _assert_too_large(response)


async def test_body_within_the_limit_is_served(sqlite_api):
    caller = await sign_up(sqlite_api)

    response = await caller.post(ACCOUNTS, json={"name": "Follower " + "x" * 100})

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", ACCOUNTS),
        ("PUT", "/api/v1/accounts/1/guard-config"),
        ("POST", "/api/v1/accounts/1/guard/rearm"),
        ("POST", "/api/v1/accounts/1/trades"),
    ],
)
async def test_body_without_a_token_is_refused_before_it_is_parsed(api, method, path):
    response = await api.http.request(
        method, path, content=NOT_JSON, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "not authenticated"


async def test_snapshot_with_a_wrong_signature_is_refused_before_it_is_parsed(api):
    follower = await register_follower(api)
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
    path = "/api/v1/ingest/snapshots"
    forged = sign("not-the-secret", "POST", path, timestamp, nonce, NOT_JSON)

    response = await api.http.post(
        path,
        content=NOT_JSON,
        headers={
            "Content-Type": "application/json",
            HEADER_DEVICE: follower.device_id,
            HEADER_TIMESTAMP: timestamp,
            HEADER_NONCE: nonce,
            HEADER_SIGNATURE: forged,
        },
    )

    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "bad signature"
