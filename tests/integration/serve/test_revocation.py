"""Deactivating a user, or changing their role or password, refuses their tokens from the next request on."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.builders import PASSWORD, Caller, sign_up
from tradeguard.auth.credentials import CurrentCredentials
from tradeguard.auth.tokens import Principal
from tradeguard.auth.users import activate_user, deactivate_user, set_password, set_role
from tradeguard.cache import MemoryCache

ME = "/api/v1/me"
STATUS = "/api/v1/reconciliation/status"
NEW_PASSWORD = "another horse battery staple"


async def _deactivate(api, caller: Caller) -> None:
    async with api.session() as session:
        await deactivate_user(session, api.services.cache, caller.email)


async def _promote(api, caller: Caller) -> None:
    async with api.session() as session:
        await set_role(session, api.services.cache, caller.email, "admin")


async def _change_password(api, caller: Caller) -> None:
    async with api.session() as session:
        await set_password(session, api.services.cache, caller.email, NEW_PASSWORD)


CHANGES = [_deactivate, _promote, _change_password]


async def _requests_made_with(caller: Caller, account_id: int) -> list:
    return [
        await caller.get(ME),
        # Twice: the second is answered from the cache before the framework's layers.
        await caller.get(STATUS, account_id=account_id),
        await caller.get(STATUS, account_id=account_id),
        await caller.get("/api/v1/accounts"),
        await caller.post("/api/v1/accounts", json={"name": "Another"}),
    ]


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__.strip("_"))
async def test_a_credentials_change_refuses_the_users_tokens_on_the_next_request(api, change):
    caller = await sign_up(api)
    account_id = await caller.new_account()
    for _ in range(2):
        assert (await caller.get(STATUS, account_id=account_id)).status_code == 200

    await change(api, caller)

    for response in await _requests_made_with(caller, account_id):
        _assert_revoked(response)
    # An accepted stream never ends by itself: the wait is bounded, so that accepting fails the test.
    _assert_revoked(await asyncio.wait_for(caller.get("/api/v1/stream", account_id=account_id), 30))


def _assert_revoked(response) -> None:
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.json()["detail"].startswith("token revoked")


async def test_other_users_tokens_keep_working(api):
    caller, bystander = await sign_up(api), await sign_up(api)
    assert (await bystander.get(ME)).status_code == 200

    await _deactivate(api, caller)

    assert (await bystander.get(ME)).status_code == 200


async def test_a_token_issued_after_a_role_change_carries_the_new_role(api):
    caller = await sign_up(api)
    await _promote(api, caller)

    signed_in = await _sign_in(api, caller.email, PASSWORD)

    assert (await signed_in.get(ME)).json()["role"] == "admin"


async def test_after_a_password_change_only_the_new_password_signs_in(api):
    caller = await sign_up(api)
    await _change_password(api, caller)

    old = await api.http.post("/api/v1/auth/token", data={"username": caller.email, "password": PASSWORD})
    signed_in = await _sign_in(api, caller.email, NEW_PASSWORD)

    assert old.status_code == 401
    assert (await signed_in.get(ME)).status_code == 200


async def test_reactivating_a_user_does_not_revive_the_tokens_issued_before(api):
    caller = await sign_up(api)
    await _deactivate(api, caller)

    async with api.session() as session:
        await activate_user(session, api.services.cache, caller.email)

    assert (await caller.get(ME)).status_code == 401
    assert (await (await _sign_in(api, caller.email, PASSWORD)).get(ME)).status_code == 200


async def _sign_in(api, email: str, password: str) -> Caller:
    response = await api.http.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return Caller(api=api, user_id=0, email=email, role="", token=response.json()["access_token"])


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_copy_of_current_credentials_read_near_its_expiry_is_rebuilt_before_it_expires(sqlite_api):
    caller = await sign_up(sqlite_api)
    clock = _Clock()
    credentials = CurrentCredentials(
        sqlite_api.services.sessions, MemoryCache(ttl_seconds=10, max_entries=100, clock=clock)
    )
    principal = Principal(caller.user_id, caller.role)
    await credentials.verify(principal)

    clock.now = 9.5
    assert credentials.known_current(principal)
    await credentials.wait_for_refreshes()
    clock.now = 12

    assert credentials.known_current(principal), "the copy read at 9.5 s expired at 10 s instead"
