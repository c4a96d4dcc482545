"""Request latency by route template, measured around the whole ASGI call."""

from __future__ import annotations

import time

from tradeguard.metrics import REQUEST_LATENCY


class RequestMetrics:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get("tradeguard.route", "unmatched")
            REQUEST_LATENCY.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
