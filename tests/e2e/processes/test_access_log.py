"""`tradeguard serve` logs no line per request unless TRADEGUARD_ACCESS_LOG asks for it."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from tests.support.net import free_port, wait_for_port
from tests.support.servers import TRADEGUARD

HEALTH = "/api/v1/trading/health"


async def served_log(tmp_path, **settings: str) -> str:
    """What `tradeguard serve` printed while it answered one health check."""
    port = free_port()
    log = tmp_path / "serve.log"
    environment = {**os.environ, "TRADEGUARD_DATA_DIR": str(tmp_path), **settings}
    for inherited in ("TRADEGUARD_DATABASE_URL", "TRADEGUARD_REDIS_URL", "TRADEGUARD_ACCESS_LOG"):
        if inherited not in settings:
            environment.pop(inherited, None)
    with open(log, "wb") as output:
        server = await asyncio.create_subprocess_exec(
            *TRADEGUARD, "serve", "--port", str(port), env=environment, stdout=output, stderr=output
        )
        try:
            await wait_for_port(port, timeout=60)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get(HEALTH)).status_code == 200
        finally:
            server.send_signal(signal.SIGINT)
            await asyncio.wait_for(server.wait(), 30)
    return log.read_text()


@pytest.mark.parametrize(("setting", "logged"), [({}, False), ({"TRADEGUARD_ACCESS_LOG": "true"}, True)])
async def test_a_request_is_logged_only_when_the_access_log_is_on(tmp_path, setting, logged):
    printed = await served_log(tmp_path, **setting)

    assert "Uvicorn running on" in printed or "Application startup complete" in printed
    assert (f"GET {HEALTH} HTTP/1.1" in printed) is logged
