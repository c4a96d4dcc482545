"""`tradeguard serve --workers 2` over PostgreSQL and a Redis that keeps freezing: no read after an acknowledged
snapshot, on whichever worker, shows an older state."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.support.bridging import position, snapshot
from tests.support.builders import PASSWORD
from tests.support.servers import serve_workers
from tradeguard.auth.users import create_user
from tradeguard.bridges.client import BridgeClient
from tradeguard.settings import Settings
from tradeguard.store.db import create_engine, session_factory

STATUS = "/api/v1/reconciliation/status"


@pytest.fixture
async def two_workers_on_private_redis(private_redis, tmp_path):
    settings = {
        "TRADEGUARD_REDIS_URL": private_redis.url,
        "TRADEGUARD_REDIS_TIMEOUT_SECONDS": "0.2",
        "TRADEGUARD_REDIS_RETRY_SECONDS": "0.3",
        "TRADEGUARD_NEAR_CACHE_EPOCHS_DIR": str(tmp_path),
    }
    async with serve_workers(tmp_path, settings) as served:
        yield served


async def _user(database_url: str) -> str:
    engine = create_engine(Settings(database_url=database_url, jwt_secret="unused-" + "x" * 32))
    email = f"outage-{uuid.uuid4().hex[:10]}@example.com"
    try:
        async with session_factory(engine)() as session:
            await create_user(session, email=email, password=PASSWORD, role="user", now=datetime.now(UTC))
            await session.commit()
    finally:
        await engine.dispose()
    return email


async def _on_a_new_connection(url: str, method: str, path: str, **arguments) -> httpx.Response:
    # A new connection each time, so the kernel hands requests to either worker.
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await http.request(method, path, **arguments)


async def _freeze_again_and_again(redis) -> None:
    while True:
        redis.pause()
        await asyncio.sleep(0.3)
        redis.resume()
        await asyncio.sleep(0.3)


async def _read_again_and_again(url: str, headers: dict, account_id: int) -> None:
    while True:
        await _on_a_new_connection(url, "GET", STATUS, params={"account_id": account_id}, headers=headers)
        await asyncio.sleep(0.02)


async def test_reads_after_acknowledged_snapshots_are_never_older_on_any_worker_while_redis_freezes(
    two_workers_on_private_redis, private_redis
):
    url, database_url = two_workers_on_private_redis
    email = await _user(database_url)
    token = (
        await _on_a_new_connection(
            url, "POST", "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    account_id = (
        await _on_a_new_connection(
            url, "POST", "/api/v1/accounts", json={"name": "Follower"}, headers=headers
        )
    ).json()["id"]
    device = (
        await _on_a_new_connection(url, "POST", f"/api/v1/accounts/{account_id}/devices", headers=headers)
    ).json()

    background = [
        asyncio.create_task(_freeze_again_and_again(private_redis)),
        *(asyncio.create_task(_read_again_and_again(url, headers, account_id)) for _ in range(2)),
    ]
    acknowledged, seen = [], []
    try:
        for _ in range(30):
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                bridge = BridgeClient(http, device_id=device["device_id"], secret=device["secret"])
                acknowledged.append((await bridge.send_snapshot(snapshot(position(1))))["total_syncs"])
            status = await _on_a_new_connection(
                url, "GET", STATUS, params={"account_id": account_id}, headers=headers
            )
            seen.append(status.json()["total_syncs"])
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        private_redis.resume()

    assert acknowledged == list(range(1, 31))
    assert seen == acknowledged
