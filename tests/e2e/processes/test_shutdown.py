"""`tradeguard serve` stops on SIGTERM even while live streams are open: they end, the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.builders import PASSWORD
from tests.support.net import free_port, wait_for_port
from tests.support.servers import TRADEGUARD
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)

EXIT_TIMEOUT_SECONDS = 30


@dataclass
class Deployment:
    environment: dict[str, str]
    workers: int


@pytest.fixture(params=["embedded", "two-workers"])
async def deployment(request, tmp_path) -> AsyncIterator[Deployment]:
    """One process on SQLite, or two API processes over PostgreSQL and Redis."""
    environment = {**os.environ, "TRADEGUARD_DATA_DIR": str(tmp_path)}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if request.param == "embedded":
        yield Deployment(environment, workers=1)
        return
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    require_service("Redis", "127.0.0.1", 6379)
    database = await create_postgres_database()
    try:
        shared = {
            "TRADEGUARD_DATABASE_URL": postgres_url(database),
            "TRADEGUARD_REDIS_URL": REDIS_URL,
            "TRADEGUARD_CACHE_NAMESPACE": f"tg:test:{uuid.uuid4().hex}:",
        }
        yield Deployment({**environment, **shared}, workers=2)
    finally:
        await drop_postgres_database(database)


async def _create_user(environment: dict[str, str], email: str) -> None:
    creating = await asyncio.create_subprocess_exec(
        *TRADEGUARD,
        "users",
        "create",
        email,
        "--password-stdin",
        env=environment,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await creating.communicate(f"{PASSWORD}\n".encode())
    assert creating.returncode == 0


async def _read_until_hello(lines) -> None:
    async for line in lines:
        if line == "event: hello":
            return
    raise AssertionError("the stream ended before its hello event")


async def test_serve_exits_on_sigterm_while_a_stream_is_open(deployment):
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.com"
    await _create_user(deployment.environment, email)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *TRADEGUARD,
        "serve",
        "--port",
        str(port),
        "--workers",
        str(deployment.workers),
        env=deployment.environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            login = await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            async with http.stream("GET", "/api/v1/stream", headers=headers) as stream:
                lines = stream.aiter_lines()
                await _read_until_hello(lines)

                server.send_signal(signal.SIGTERM)
                await asyncio.wait_for(server.wait(), EXIT_TIMEOUT_SECONDS)

                assert server.returncode is not None
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
