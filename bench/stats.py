"""Percentiles and summaries of latency samples, the one way every benchmark reports them."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 90, 95, 99, 99.9)


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(samples_seconds: Sequence[float]) -> dict:
    """Milliseconds: count, mean, min, max and the usual percentiles."""
    values = sorted(samples_seconds)
    if not values:
        return {"count": 0}
    summary = {
        "count": len(values),
        "mean_ms": round(sum(values) / len(values) * 1000, 3),
        "min_ms": round(values[0] * 1000, 3),
        "max_ms": round(values[-1] * 1000, 3),
    }
    for pct in PERCENTILES:
        summary[f"p{pct:g}_ms".replace(".", "_")] = round(percentile(values, pct) * 1000, 3)
    return summary


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
