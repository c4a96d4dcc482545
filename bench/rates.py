"""The arithmetic of load phases: open-loop send times, CPU per snapshot, and where a sweep's knee is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def send_offsets(rate: float, count: int) -> list[float]:
    """Seconds after the phase's start at which request i is due, evenly spaced at `rate` per second."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    return [index / rate for index in range(count)]


def per_snapshot_ms(cpu_seconds: Mapping[str, float], snapshots: int) -> dict[str, float]:
    """CPU milliseconds per snapshot of each process group; empty when nothing was sent."""
    if snapshots <= 0:
        return {}
    return {group: round(seconds * 1000 / snapshots, 3) for group, seconds in cpu_seconds.items()}


def knee(points: Sequence[Mapping], *, kept: float = 0.95) -> float | None:
    """The highest offered rate the server kept up with: achieved ≥ `kept` × offered, with no errors.

    `points` are sweep results with `offered_per_s`, `achieved_per_s` and `errors`. Rates above
    the first one missed are not considered: past saturation a queue only grows.
    """
    best = None
    for point in sorted(points, key=lambda p: p["offered_per_s"]):
        if point["errors"] or point["achieved_per_s"] < kept * point["offered_per_s"]:
            break
        best = point["offered_per_s"]
    return best


def applied_check(acknowledged_applied: int, total_syncs_delta: int) -> dict:
    """Every snapshot answered `applied` must be in the database: the stored sync count must cover them.

    The count may exceed the acknowledgements (an answer lost after the commit), never fall short.
    """
    return {
        "acknowledged_applied": acknowledged_applied,
        "total_syncs_delta": total_syncs_delta,
        "missing": max(0, acknowledged_applied - total_syncs_delta),
        "unacknowledged_but_stored": max(0, total_syncs_delta - acknowledged_applied),
        "every_acknowledged_applied": total_syncs_delta >= acknowledged_applied,
    }
