from __future__ import annotations

import asyncio
import hmac
import logging
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from tradeguard import __version__
from tradeguard.api.deps import ServicesDep, verified_principal
from tradeguard.api.responses import model_response
from tradeguard.api.schemas import ComponentCheck, Health
from tradeguard.metrics import business_metrics, exposition
from tradeguard.queries.business_metrics import BusinessNumbers, business_numbers

BUSINESS_METRICS_TIMEOUT_SECONDS = 2.0
"""A scrape waits no longer for the database: a slow database must not make /metrics time out."""

router = APIRouter()
log = logging.getLogger(__name__)


@router.get("/api/v1/trading/health", response_model=Health, tags=["health"])
async def health(services: ServicesDep):
    """Public: no token. The database down makes the service unhealthy (503); the cache down only degraded."""
    database = await _check_database(services)
    cache_up = await services.cache.healthy()
    cache = ComponentCheck(status="ok" if cache_up else "down", backend=services.cache.backend)
    if database.status == "down":
        status, code = "unhealthy", 503
    else:
        status, code = ("healthy" if cache_up else "degraded"), 200
    body = Health(
        status=status,
        timestamp=datetime.now(UTC),
        version=__version__,
        checks={"database": database, "cache": cache},
    )
    return model_response(body, code)


async def _check_database(services: ServicesDep) -> ComponentCheck:
    backend = services.engine.dialect.name
    started = time.perf_counter()
    try:
        async with services.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the database is not usable
        return ComponentCheck(status="down", backend=backend, detail=type(exc).__name__)
    return ComponentCheck(
        status="ok", backend=backend, latency_ms=round((time.perf_counter() - started) * 1000, 3)
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep):
    """Public for the processes' own metrics; the platform's numbers only for an operator's scrape."""
    business = []
    if await _scraped_by_operator(request, services):
        business = business_metrics(await _business_numbers(services))
    body, content_type = exposition(business)
    return Response(body, media_type=content_type)


async def _scraped_by_operator(request: Request, services: ServicesDep) -> bool:
    """The metrics token, or an operator's access token; a token that is neither valid is a 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    expected = services.settings.metrics_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    principal = await verified_principal(services, token)
    return principal.sees_every_account


async def _business_numbers(services: ServicesDep) -> BusinessNumbers | None:
    try:
        async with asyncio.timeout(BUSINESS_METRICS_TIMEOUT_SECONDS):
            async with services.sessions() as session:
                return await business_numbers(session, datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001 - the process's own metrics are still worth serving
        log.warning("the business metrics' queries failed: %r", exc)
        return None
