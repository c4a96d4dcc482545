"""tradeguard under test: its settings, the app in process with a client, or served behind a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.net import SHORT_KEEPALIVE, free_port, wait_for_port
from tests.support.services import REDIS_URL, require_service
from tradeguard.app import create_app
from tradeguard.settings import Settings


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
