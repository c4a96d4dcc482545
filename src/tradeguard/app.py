"""The application factory: routers, error mapping, and a lifespan that opens and closes what the process holds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tradeguard import __version__
from tradeguard.api.body_limit import BodyLimit
from tradeguard.api.errors import install_error_handlers
from tradeguard.api.fast_reads import FastReadsAPI
from tradeguard.api.metrics_middleware import RequestMetrics
from tradeguard.api.openapi import install_openapi
from tradeguard.api.routes import (
    accounts,
    auth,
    bulk_actions,
    dashboard,
    devices,
    exposure,
    health,
    ingest,
    platform,
    reads,
    stream,
    trades,
)
from tradeguard.cache import NearCache
from tradeguard.services import Services
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import open_pool
from tradeguard.worker import Worker

log = logging.getLogger(__name__)


INSTRUMENT_REFRESH_SECONDS = 60


async def _refresh_instruments(services: Services) -> None:
    """Overrides set with `tradeguard instruments set` reach every process within a minute."""
    while True:
        await asyncio.sleep(INSTRUMENT_REFRESH_SECONDS)
        try:
            await services.load_instruments()
        except Exception:
            log.exception("could not reload the instrument table; keeping the previous one")


@contextlib.contextmanager
def _on_exit_signals(action: Callable[[], None]) -> Iterator[None]:
    """Run `action` in the event loop on SIGTERM or SIGINT, then whatever handled the signal before.

    uvicorn, on such a signal, waits for every open response to finish before it shuts the app
    down, and a live stream never finishes by itself: the app must hear the signal first.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    exit_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in exit_signals}

    def on_signal(sig: int, frame) -> None:
        loop.call_soon_threadsafe(action)
        handler = previous[sig]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in exit_signals:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = Services.open(settings)
        if settings.auto_migrate:
            await migrate.upgrade(services.engine)
        await services.load_instruments()
        await open_pool(services.engine, settings.db_pool_size)
        app.state.services = services
        background = [asyncio.create_task(_refresh_instruments(services))]
        if isinstance(services.cache, NearCache):
            background.append(asyncio.create_task(services.cache.follow_other_hosts(settings.redis_url)))
        if settings.run_worker_in_api:
            background.append(asyncio.create_task(Worker(services).run()))
        # Everything allocated so far lives as long as the process: out of the collector's sight,
        # full collections stop walking it (measured: ~90 ms pauses about once a second under load).
        gc.collect()
        gc.freeze()
        log.info(
            "tradeguard serving: database %s, cache %s", services.engine.dialect.name, services.cache.backend
        )
        try:
            with _on_exit_signals(services.bus.end_streams):
                yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.close()

    app = FastReadsAPI(
        title="tradeguard",
        version=__version__,
        summary="Account reconciliation and risk guards for signal and copy-trading platforms.",
        lifespan=lifespan,
        # Metrics are Prometheus's (/metrics); FastAPI's OpenTelemetry bridge would otherwise look
        # for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
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
        platform.router,
        stream.router,
        exposure.router,
        bulk_actions.router,
    ):
        app.include_router(router, prefix="/api/v1")
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, route_templates=app.route_templates)
    return app
