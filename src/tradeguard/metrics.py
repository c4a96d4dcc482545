"""Prometheus metrics served at GET /metrics, added up over every worker process when there are several.

The business metrics (accounts by status, commands, notifier failures) are the exception: they are
the database's numbers, not a process's, read by the process that answers the scrape and never
written where the workers' values are added up, so several workers never count them twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from tradeguard.queries.business_metrics import BusinessNumbers

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
    "platform_accounts",
    "platform_exposure",
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


def _labelled(name: str, documentation: str, label: str, counts: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def business_metrics(numbers: BusinessNumbers | None) -> list[Metric]:
    """The platform's numbers as gauges; None (the database did not answer in time): only `up` at 0."""
    up = GaugeMetricFamily(
        "tradeguard_business_metrics_up",
        "Whether the database answered the business metrics' queries in time",
    )
    up.add_metric([], 0 if numbers is None else 1)
    if numbers is None:
        return [up]
    by_status = _labelled(
        "tradeguard_accounts",
        "Accounts per attention status, as the platform view ranks them",
        "status",
        numbers.accounts_by_status,
    )
    commands = _labelled(
        "tradeguard_close_commands",
        "Close commands pending, sent (unacknowledged) or failed",
        "state",
        numbers.commands_by_state,
    )
    deliveries = _labelled(
        "tradeguard_alert_deliveries_failed",
        "Alert deliveries a notifier gave up on",
        "notifier",
        numbers.failed_deliveries_by_notifier,
    )
    return [
        up,
        by_status,
        GaugeMetricFamily(
            "tradeguard_accounts_halted", "Accounts whose trading is halted", value=numbers.halted_accounts
        ),
        GaugeMetricFamily(
            "tradeguard_accounts_feed_stale",
            "Accounts whose snapshot feed is stale",
            value=numbers.stale_feeds,
        ),
        commands,
        deliveries,
        GaugeMetricFamily(
            "tradeguard_oldest_sent_close_command_age_seconds",
            "Age of the oldest close command sent and not acknowledged; 0 when there is none",
            value=numbers.oldest_sent_command_age_seconds,
        ),
    ]


class _Fixed:
    """A collector answering metrics already computed: the registry only formats them."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def exposition(extra: Iterable[Metric] = ()) -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, with the content type to serve them as."""
    extra_registry = CollectorRegistry()
    extra_registry.register(_Fixed(extra))
    if not os.environ.get(MULTIPROCESS_METRICS_DIR):
        return generate_latest() + generate_latest(extra_registry), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry) + generate_latest(extra_registry), CONTENT_TYPE_LATEST
