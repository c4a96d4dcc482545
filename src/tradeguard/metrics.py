"""Prometheus metrics served at GET /metrics."""

from prometheus_client import Counter, Histogram

CACHED_VIEWS = (
    "reconciliation_status",
    "reconciliation_logs",
    "open_positions",
    "guard_status",
    "alerts",
    "equity",
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
