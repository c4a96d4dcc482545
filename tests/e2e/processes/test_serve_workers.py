"""`tradeguard serve --workers N`: several processes, one schema migration, metrics added up over all."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.support.builders import NOW, PASSWORD
from tests.support.servers import serve_workers
from tests.support.services import REDIS_URL, require_service
from tradeguard.accounts.service import create_account
from tradeguard.auth.tokens import Principal
from tradeguard.auth.users import create_user

HEALTH = "/api/v1/trading/health"
REQUESTS = 40
SCRAPER = {"Authorization": "Bearer the-scrapers-token"}


@pytest.fixture
async def two_workers(tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    settings = {
        "TRADEGUARD_REDIS_URL": REDIS_URL,
        "TRADEGUARD_CACHE_NAMESPACE": f"tg:test:{uuid.uuid4().hex}:",
    }
    async with serve_workers(tmp_path, settings) as (url, _database):
        yield url


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


async def test_business_metrics_from_any_worker_are_the_databases_counted_once(tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    settings = {
        "TRADEGUARD_REDIS_URL": REDIS_URL,
        "TRADEGUARD_CACHE_NAMESPACE": f"tg:test:{uuid.uuid4().hex}:",
        "TRADEGUARD_METRICS_TOKEN": "the-scrapers-token",
    }
    async with serve_workers(tmp_path, settings) as (url, database):
        engine = create_async_engine(database)
        try:
            async with async_sessionmaker(engine)() as session:
                user = await create_user(
                    session, email="o@example.com", password=PASSWORD, role="user", now=NOW
                )
                for name in ("one", "two", "three"):
                    await create_account(
                        session,
                        Principal(user.id, "user"),
                        name=name,
                        broker=None,
                        login=None,
                        currency="USD",
                        now=NOW,
                    )
                await session.commit()
        finally:
            await engine.dispose()
        scraped = []
        for _ in range(4):
            async with httpx.AsyncClient(base_url=url) as client:
                text = (await client.get("/metrics", headers=SCRAPER)).text
            scraped.append(re.findall(r'^tradeguard_accounts\{status="ok"\} (\S+)$', text, re.MULTILINE))

    assert scraped == [["3.0"]] * 4
