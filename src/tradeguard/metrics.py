"""Prometheus metrics served at GET /metrics, added up over every worker process when there are several."""

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own setting: set before the worker processes start, each writes its values there."""

CACHED_VIEWS = (
    "reconciliation_status",
    "reconciliation_logs",
    "open_positions",
    "guard_status",
    "alerts",
    "equity",
    "credentials",
)
CACHE_HITS = Counter("tradeguard_cache_hits_total", "Read responses served from the cache", ["view"])
CACHE_MISSES = Counter("tradeguard_cache_misses_total", "Read responses built from the database", ["view"])
CACHE_REFRESHES = Counter(
    "tradeguard_cache_refreshes_total",
    "Cached reads rebuilt ahead of a reader: after a write, or before the entry expires",
    ["view"],
)
CACHE_ERRORS = Counter("tradeguard_cache_errors_total", "Cache operations that failed and fell back")
REQUEST_LATENCY = Histogram(
    "tradeguard_request_seconds",
    "Request latency by route",
    ["method", "route", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, with the content type to serve them as."""
    if not os.environ.get(MULTIPROCESS_METRICS_DIR):
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
