"""What a served process has ready before its first request."""

from __future__ import annotations

from tests.support.apps import make_settings, start_api, stop_api
from tests.support.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)


async def test_the_database_pool_is_open_before_the_first_request(tmp_path):
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = await create_postgres_database()
    try:
        running, lifespan = await start_api(make_settings(tmp_path, postgres_url(name), db_pool_size=4))
        try:
            idle_connections = running.services.engine.pool.checkedin()
        finally:
            await stop_api(running, lifespan)
    finally:
        await drop_postgres_database(name)

    assert idle_connections == 4
