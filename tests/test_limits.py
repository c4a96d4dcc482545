"""Request bodies: a size limit enforced before they are read."""

from __future__ import annotations

from tests.support import sign_up

ACCOUNTS = "/api/v1/accounts"


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
