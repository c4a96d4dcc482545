"""The application factory: routers, error mapping, and a lifespan that opens and closes what the process holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tradeguard import __version__
from tradeguard.api.errors import install_error_handlers
from tradeguard.api.metrics_middleware import RequestMetrics
from tradeguard.api.openapi import install_openapi
from tradeguard.api.routes import accounts, auth, devices, health, ingest, reads, stream, trades
from tradeguard.services import Services
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.worker import Worker

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = Services.open(settings)
        if settings.auto_migrate:
            await migrate.upgrade(services.engine)
        await services.load_instruments()
        app.state.services = services
        background = asyncio.create_task(Worker(services).run()) if settings.run_worker_in_api else None
        log.info(
            "tradeguard serving: database %s, cache %s", services.engine.dialect.name, services.cache.backend
        )
        try:
            yield
        finally:
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            await services.close()

    app = FastAPI(
        title="tradeguard",
        version=__version__,
        summary="Account reconciliation and risk guards for signal and copy-trading platforms.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    for router in (
        auth.router,
        accounts.router,
        devices.router,
        trades.router,
        ingest.router,
        reads.router,
        stream.router,
    ):
        app.include_router(router, prefix="/api/v1")
    app.include_router(health.router)
    app.add_middleware(RequestMetrics)
    return app
