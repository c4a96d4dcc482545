"""`tradeguard serve` as its own processes, for what only real worker processes show."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.net import free_port, wait_for_port
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)

TRADEGUARD = (sys.executable, "-c", "from tradeguard.cli import app; app()")


@contextlib.asynccontextmanager
async def serve_workers(tmp_path: Path, settings: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """`serve --workers 2` on a throwaway PostgreSQL database: its URL and the database's, until it stops."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    database = await create_postgres_database()
    port = free_port()
    environment = {
        **os.environ,
        "TRADEGUARD_DATABASE_URL": postgres_url(database),
        "TRADEGUARD_DATA_DIR": str(tmp_path),
        "TRADEGUARD_RUN_WORKER_IN_API": "false",
        **settings,
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = await asyncio.create_subprocess_exec(
        *TRADEGUARD,
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
        yield f"http://127.0.0.1:{port}", postgres_url(database)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()
            await server.wait()
        await drop_postgres_database(database)
