"""`tradeguard serve --workers N`: several processes, one schema migration, metrics added up over all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid

import httpx
import pytest

from tests.conftest import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)
from tests.net import free_port, wait_for_port

HEALTH = "/api/v1/trading/health"
REQUESTS = 40


@pytest.fixture
async def two_workers(tmp_path):
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    require_service("Redis", "127.0.0.1", 6379)
    database = await create_postgres_database()
    port = free_port()
    environment = {
        **os.environ,
        "TRADEGUARD_DATABASE_URL": postgres_url(database),
        "TRADEGUARD_REDIS_URL": REDIS_URL,
        "TRADEGUARD_CACHE_NAMESPACE": f"tg:test:{uuid.uuid4().hex}:",
        "TRADEGUARD_DATA_DIR": str(tmp_path),
        "TRADEGUARD_RUN_WORKER_IN_API": "false",
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from tradeguard.cli import app; app()",
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()
            await server.wait()
        await drop_postgres_database(database)


async def test_metrics_from_any_worker_count_the_requests_every_worker_served(two_workers):
    for _ in range(REQUESTS):
        # A new connection each time, so the kernel hands requests to both workers.
        async with httpx.AsyncClient(base_url=two_workers) as client:
            assert (await client.get(HEALTH)).status_code == 200
    counted = []
    for _ in range(4):
        async with httpx.AsyncClient(base_url=two_workers) as client:
            text = (await client.get("/metrics")).text
        match = re.search(
            r'^tradeguard_request_seconds_count\{method="GET",route="/api/v1/trading/health",status="200"\} (\S+)$',
            text,
            re.MULTILINE,
        )
        counted.append(float(match.group(1)) if match else None)

    assert counted == [REQUESTS] * 4
