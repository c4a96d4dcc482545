"""PostgreSQL and Redis as the tests find them: where they are, whether they are up, throwaway databases.

Variants needing a server are skipped with a reason when it is absent, except under CI=true, where
its absence fails the run.
"""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

from tests.support.net import reachable

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


# For end-to-end stories too slow to run four times: once embedded, once on the production pair.
embedded_and_production = pytest.mark.parametrize(
    ("database_url", "redis_url"),
    [("sqlite", "memory"), ("postgresql", "redis")],
    indirect=True,
    ids=["sqlite-memory", "postgresql-redis"],
)
