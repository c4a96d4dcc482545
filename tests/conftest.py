"""Fixtures: the same tests run on SQLite and PostgreSQL, with the in-process cache and real Redis.

PostgreSQL and Redis variants are skipped with a reason when the servers are absent, except under
CI=true, where their absence fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from tests.http_receiver import Receiver
from tests.net import SHORT_KEEPALIVE, free_port, reachable, wait_for_port
from tests.private_redis import PrivateRedis
from tests.support import sign_up
from tradeguard.app import create_app
from tradeguard.settings import Settings

POSTGRES_HOST = os.environ.get("TRADEGUARD_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("TRADEGUARD_TEST_PG_PORT", "5432"))
POSTGRES_ADMIN_DB = os.environ.get("TRADEGUARD_TEST_PG_DB", "test")
POSTGRES_USER = os.environ.get("TRADEGUARD_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("TRADEGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, host: str, port: int) -> None:
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message}; set CI=true to make this a failure")


async def _admin_connection() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database=POSTGRES_ADMIN_DB
    )


async def create_postgres_database() -> str:
    """A throwaway database per test session, so runs never see each other's rows."""
    name = f"tradeguard_test_{uuid.uuid4().hex[:12]}"
    connection = await _admin_connection()
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_postgres_database(name: str) -> None:
    connection = await _admin_connection()
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def postgres_url(name: str) -> str:
    return f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


@pytest.fixture(scope="session")
def postgres_user_for_tests() -> str:
    return POSTGRES_USER


# For end-to-end stories too slow to run four times: once embedded, once on the production pair.
embedded_and_production = pytest.mark.parametrize(
    ("database_url", "redis_url"),
    [("sqlite", "memory"), ("postgresql", "redis")],
    indirect=True,
    ids=["sqlite-memory", "postgresql-redis"],
)


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


def make_settings(tmp_dir: Path, database_url: str, redis_url: str = "", **overrides) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_dir,
        jwt_secret="test-secret-" + "x" * 32,
        # Each app its own cache keys: apps of different databases number their accounts alike.
        **{
            "run_worker_in_api": False,
            "cache_namespace": f"tg:test:{uuid.uuid4().hex}:",
            "near_cache_epochs_dir": tmp_dir,
            **overrides,
        },
    )


@dataclass
class Api:
    """An app with its lifespan running and an HTTP client talking to it in-process."""

    app: object
    http: httpx.AsyncClient

    @property
    def services(self):
        return self.app.state.services

    def session(self) -> AsyncSession:
        return self.services.sessions()


async def start_api(settings: Settings) -> tuple[Api, object]:
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tradeguard.test")
    return Api(app=app, http=http), lifespan


async def stop_api(api: Api, lifespan) -> None:
    await api.http.aclose()
    await lifespan.__aexit__(None, None, None)


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


@dataclass
class LiveServer:
    """The app behind a real socket, for what an in-process transport cannot do (streams, browsers)."""

    api: Api
    url: str


@contextlib.asynccontextmanager
async def serve_live(settings: Settings) -> AsyncIterator[LiveServer]:
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=SHORT_KEEPALIVE) as http:
            yield LiveServer(api=Api(app=app, http=http), url=url)
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def two_api_processes(
    tmp_path: Path, redis_url: str | None = None, database_url: str | None = None, **overrides
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two served apps over one database (an SQLite file of their own by default) and one Redis
    cache (the shared test Redis by default), as two API processes of one host share them."""
    if redis_url is None:
        require_service("Redis", "127.0.0.1", 6379)
        redis_url = REDIS_URL
    database = database_url or f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    shared = {"cache_namespace": f"tg:test:{uuid.uuid4().hex}:", **overrides}
    first = make_settings(tmp_path, database, redis_url, **shared)
    second = make_settings(tmp_path, database, redis_url, auto_migrate=False, **shared)
    async with serve_live(first) as one, serve_live(second) as other:
        yield one, other


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
