"""Request latency by route template, measured around the whole ASGI call."""

from __future__ import annotations

import time

from tradeguard.metrics import REQUEST_LATENCY


class RequestMetrics:
    def __init__(self, app, route_templates: dict[int, str]) -> None:
        self.app = app
        # The route FastAPI puts in the scope is its router's own, without the prefix it was included at.
        self._route_templates = route_templates
        # Looking a labelled child up takes a lock and validates the labels; remembering it does not.
        self._latencies: dict[tuple[str, str, int], object] = {}

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
            template = self._route_templates.get(id(route)) or getattr(route, "path", None) or "unmatched"
            key = (scope["method"], template, status)
            latency = self._latencies.get(key)
            if latency is None:
                latency = self._latencies[key] = REQUEST_LATENCY.labels(key[0], template, str(status))
            latency.observe(time.perf_counter() - started)
