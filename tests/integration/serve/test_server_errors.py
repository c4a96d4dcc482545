"""Failures on the server side answer JSON too: 503 with Retry-After while the database is unreachable, 500 otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.apps import Api, make_settings, start_api, stop_api
from tests.support.bridging import register_follower, snapshot
from tests.support.builders import sign_up
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_USER,
    create_postgres_database,
    drop_postgres_database,
    require_service,
)
from tests.support.tcp_proxy import TcpProxy
from tradeguard.bridges.client import SNAPSHOTS_PATH

ACCOUNTS = "/api/v1/accounts"
HEALTH = "/api/v1/trading/health"


@pytest.fixture
async def behind_proxy(redis_url, tmp_path) -> AsyncIterator[tuple[Api, TcpProxy]]:
    """An app whose PostgreSQL connections all pass through a proxy the test can cut."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = await create_postgres_database()
    proxy = TcpProxy(POSTGRES_HOST, POSTGRES_PORT)
    await proxy.start()
    url = f"postgresql+asyncpg://{POSTGRES_USER}@127.0.0.1:{proxy.port}/{name}"
    running, lifespan = await start_api(make_settings(tmp_path, url, redis_url, db_pool_size=2))
    try:
        yield running, proxy
    finally:
        await stop_api(running, lifespan)
        await proxy.cut()
        await drop_postgres_database(name)


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"] == "the database is unreachable; retry shortly"
    assert int(response.headers["retry-after"]) > 0


async def test_requests_while_the_database_is_unreachable_answer_503_json(behind_proxy):
    api, proxy = behind_proxy
    follower = await register_follower(api)
    assert (await follower.owner.get(ACCOUNTS)).status_code == 200

    await proxy.cut()

    _assert_unavailable(await follower.owner.get(ACCOUNTS))
    _assert_unavailable(await follower.owner.get("/api/v1/alerts", account_id=follower.account_id))
    _assert_unavailable(await follower.bridge.request("POST", SNAPSHOTS_PATH, snapshot()))
    health = await api.http.get(HEALTH)
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["status"] == "down"


async def test_the_service_answers_again_once_the_database_is_back(behind_proxy):
    api, proxy = behind_proxy
    follower = await register_follower(api)
    await proxy.cut()
    _assert_unavailable(await follower.owner.get(ACCOUNTS))

    await proxy.start()

    assert (await follower.owner.get(ACCOUNTS)).status_code == 200
    assert (await follower.bridge.request("POST", SNAPSHOTS_PATH, snapshot())).status_code == 200


async def test_an_unexpected_failure_answers_500_json(sqlite_api, monkeypatch):
    caller = await sign_up(sqlite_api)

    async def broken(*_args, **_kwargs):
        raise RuntimeError("a defect")

    monkeypatch.setattr(sqlite_api.services.reads, "alerts", broken)
    # As a server would: the failure is answered, not raised into the client.
    transport = httpx.ASGITransport(app=sqlite_api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tradeguard.test") as http:
        response = await http.get("/api/v1/alerts", headers=caller.headers)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "internal server error"}
