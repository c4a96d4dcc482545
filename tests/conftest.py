"""Fixtures: the same tests run on SQLite and PostgreSQL, with the in-process cache and real Redis.

PostgreSQL and Redis variants are skipped with a reason when the servers are absent, except under
CI=true, where their absence fails the run. Nothing here connects until a test asks for a fixture,
so tests/unit, which asks for none of them, runs without either server.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from hypothesis import settings

from tests.support.apps import Api, make_settings, start_api, stop_api
from tests.support.builders import sign_up
from tests.support.http_receiver import Receiver
from tests.support.net import free_port
from tests.support.private_redis import PrivateRedis
from tests.support.services import (
    IN_CI,
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_USER,
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)

# Property tests check what holds, not how fast: a loaded machine must not fail them on time.
settings.register_profile("tradeguard", deadline=None)
settings.load_profile("tradeguard")


@pytest.fixture(scope="session")
def postgres_user_for_tests() -> str:
    return POSTGRES_USER


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request, tmp_path_factory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'tradeguard.db'}"
        return
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = await create_postgres_database()
    try:
        yield postgres_url(name)
    finally:
        await drop_postgres_database(name)


@pytest.fixture(scope="session", params=["memory", "redis"])
async def redis_url(request) -> AsyncIterator[str]:
    if request.param == "memory":
        yield ""
        return
    require_service("Redis", "127.0.0.1", int(REDIS_URL.split(":")[2].split("/")[0]))
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    yield REDIS_URL


@pytest.fixture(scope="session")
async def api(database_url: str, redis_url: str, tmp_path_factory) -> AsyncIterator[Api]:
    """One running service per (database, cache) pair; tests keep apart by creating their own users."""
    settings = make_settings(tmp_path_factory.mktemp("data"), database_url, redis_url)
    running, lifespan = await start_api(settings)
    try:
        yield running
    finally:
        await stop_api(running, lifespan)


@pytest.fixture(scope="session")
async def sqlite_api(tmp_path_factory) -> AsyncIterator[Api]:
    """For tests whose subject is not the storage backend."""
    data = tmp_path_factory.mktemp("sqlite-only")
    settings = make_settings(data, f"sqlite+aiosqlite:///{data / 'tradeguard.db'}")
    running, lifespan = await start_api(settings)
    try:
        yield running
    finally:
        await stop_api(running, lifespan)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP endpoint standing in for a webhook receiver or the Telegram Bot API."""
    endpoint = Receiver()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def _require_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed; CI=true requires it")
        pytest.skip("redis-server is not installed; set CI=true to make this a failure")


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A Redis of the test's own that loses its data when killed."""
    _require_redis_server()
    server = PrivateRedis(free_port())
    await server.start()
    yield server
    server.stop()


@pytest.fixture
async def persistent_redis(tmp_path) -> AsyncIterator[PrivateRedis]:
    """A Redis of the test's own that comes back with its data after being killed, as one with
    persistence (or a promoted replica) does."""
    _require_redis_server()
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    server = PrivateRedis(free_port(), data_dir)
    await server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def alice(api):
    """A user shared by one module's tests on one (database, cache) pair: signing up hashes a password, which is slow."""
    return await sign_up(api)


@pytest.fixture(scope="module")
async def bob(api):
    return await sign_up(api)


@pytest.fixture(scope="module")
async def sqlite_user(sqlite_api):
    return await sign_up(sqlite_api)
