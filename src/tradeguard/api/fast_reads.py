"""The cache hit of the hot reads, answered before FastAPI's middleware, routing and dependencies.

Profiling showed a cached read spending most of its time in the framework, not in the cache. This
layer answers only what it can answer exactly as the routed endpoint would: a GET of one of the
routed endpoints named after a hot view (`HOT_VIEWS`: reconciliation status, open positions, guard
status), whose path, query parameters and latency metric it takes from that route, with a valid
bearer token whose
credentials are current (`auth/credentials.py`), only known query parameters, an account the
caller is already known to see, and an entry in the cache (this process's own copy first, else
the shared cache). Every other request (a miss, an error to report, anything unusual) goes on to
the app unchanged, which builds the response and fills the cache through the same `cache_key`. A
copy late in its time to live is rebuilt in the background, so a view read steadily never expires
under its readers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram

from tradeguard.auth.tokens import Principal
from tradeguard.cache import ResponseCache
from tradeguard.errors import NotAuthenticated
from tradeguard.metrics import CACHE_HITS, REQUEST_LATENCY
from tradeguard.queries.service import HOT_VIEWS, cache_key

ACCOUNT_PARAMETER = "account_id"
_HEADERS = [(b"content-type", b"application/json")]
_ONLY_ACCOUNT = re.compile(ACCOUNT_PARAMETER.encode() + rb"=([1-9][0-9]{0,17})")


@dataclass(frozen=True, slots=True)
class HotRead:
    """What the fast path needs of a routed hot read, taken from its route."""

    view: str
    parameters: frozenset[str]
    """The route's query parameters besides the account, which the cache key carries."""
    hits: Counter
    answered: Histogram
    """The route's own latency series, the one `RequestMetrics` observes when the app answers."""


def hot_reads_of(routes: Iterable[object], prefix: str = "") -> dict[str, HotRead]:
    """The hot reads among a router's routes, by full path; each must take the account as a query parameter."""
    found = {}
    for route in routes:
        if not (isinstance(route, APIRoute) and route.name in HOT_VIEWS and "GET" in route.methods):
            continue
        parameters = frozenset(parameter.alias for parameter in route.dependant.query_params)
        path = prefix + route.path
        if ACCOUNT_PARAMETER not in parameters or route.dependant.path_params:
            raise TypeError(f"{path} is named after a hot view but is not keyed like one")
        found[path] = HotRead(
            view=route.name,
            parameters=parameters - {ACCOUNT_PARAMETER},
            hits=CACHE_HITS.labels(route.name),
            answered=REQUEST_LATENCY.labels("GET", path, "200"),
        )
    return found


class FastReadsAPI(FastAPI):
    """FastAPI, with the cache hits of the hot reads answered before any of its layers."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.hot_reads: dict[str, HotRead] = {}
        self.route_templates: dict[int, str] = {}
        """A routed endpoint's full path template by the id of its route, which carries only its router's part."""

    def include_router(self, router: APIRouter, *, prefix: str = "", **options) -> None:
        """Include as FastAPI does, and learn the router's hot reads and templates (its own routes, not nested routers')."""
        super().include_router(router, prefix=prefix, **options)
        self.hot_reads.update(hot_reads_of(router.routes, prefix))
        self.route_templates.update({id(route): prefix + route.path for route in router.routes})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            hot_read = self.hot_reads.get(scope["path"])
            if hot_read is not None:
                started = time.perf_counter()
                body = self._cached_body(scope, hot_read)
                if body is not None and not isinstance(body, bytes):
                    body = await body
                if body is not None:
                    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    hot_read.answered.observe(time.perf_counter() - started)
                    return
        await super().__call__(scope, receive, send)

    def _cached_body(self, scope, hot_read: HotRead) -> bytes | Awaitable[bytes | None] | None:
        """The body from this process's copy, or the lookup in the shared cache to await, or None."""
        services = getattr(self.state, "services", None)
        if services is None:
            return None
        token = _bearer(scope)
        if token is None:
            return None
        try:
            principal = services.tokens.read(token)
        except NotAuthenticated:
            return None
        only_account = _ONLY_ACCOUNT.fullmatch(scope["query_string"])
        if only_account is not None:
            # The common query, read without the general parser: the same answer, a little sooner.
            account_text, query = only_account.group(1).decode(), {}
        else:
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            query = dict(pairs)
            if len(query) != len(pairs):
                return None
            account_text = query.pop(ACCOUNT_PARAMETER, None)
            if set(query) - hot_read.parameters or any(not value for value in query.values()):
                return None
        account_id = None
        if account_text is not None:
            if not account_text.isdigit() or int(account_text) < 1:
                return None
            account_id = int(account_text)
            if not services.reads.known_visible(principal, account_id):
                return None
        view = hot_read.view
        cache_scope, field = cache_key(principal.user_id, account_id, view, query)
        if not services.credentials.known_current(principal):
            return _verified_shared_hit(services, principal, cache_scope, field, hot_read)
        peeked = services.cache.peek(cache_scope, field)
        if peeked is None:
            return _shared_hit(services.cache, cache_scope, field, hot_read)
        if peeked.refresh_due:
            services.reads.refresh_soon(principal, account_id, view, query, built_at=peeked.built_at)
        hot_read.hits.inc()
        return peeked.value


async def _verified_shared_hit(
    services, principal: Principal, scope: str, field: str, hot_read: HotRead
) -> bytes | None:
    """The shared cache's entry, once the caller's credentials, of which this process holds no copy, are verified."""
    try:
        await services.credentials.verify(principal)
    except Exception:  # noqa: BLE001 - revoked, or the database down: the app answers, as for any error
        return None
    return await _shared_hit(services.cache, scope, field, hot_read)


async def _shared_hit(cache: ResponseCache, scope: str, field: str, hot_read: HotRead) -> bytes | None:
    body = (await cache.get(scope, field)).value
    if body is not None:
        hot_read.hits.inc()
    return body


def _bearer(scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None
