"""Stale feed guard: an account whose bridge stopped sending snapshots can no longer be watched.

`StaleFeedGuard` runs on the sweep's clock tick (no snapshot arrives to trigger it); the ingest
step clears the mark when snapshots arrive again. A stale feed is CRITICAL: the account shows
`error` and alerts, though there is nothing for this guard to close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from tradeguard.domain.guards.guard import (
    GuardAlert,
    GuardAuditEntry,
    GuardInputs,
    GuardVerdict,
    MayCause,
    Trigger,
)
from tradeguard.domain.guards.levels import GuardLevel, InvalidGuardSettings

STALE_FEED = "stale_feed"


@dataclass(frozen=True, slots=True)
class StaleDecision:
    """`age_seconds` is None when the account has never sent a snapshot."""

    is_stale: bool
    was_stale: bool
    age_seconds: Decimal | None
    stale_after_seconds: Decimal
    message: str

    @property
    def level(self) -> GuardLevel:
        return GuardLevel.CRITICAL if self.is_stale else GuardLevel.NORMAL

    @property
    def previous_level(self) -> GuardLevel:
        return GuardLevel.CRITICAL if self.was_stale else GuardLevel.NORMAL

    @property
    def level_changed(self) -> bool:
        return self.is_stale is not self.was_stale

    @property
    def should_alert(self) -> bool:
        return self.level_changed

    @property
    def reasons(self) -> tuple[str, ...]:
        return (STALE_FEED,) if self.is_stale else ()


def evaluate_stale(
    last_snapshot_at: datetime | None,
    now: datetime,
    stale_after_seconds: int | Decimal,
    *,
    was_stale: bool = False,
) -> StaleDecision:
    """Stale when strictly more than `stale_after_seconds` have passed since the last snapshot.

    An account that never sent a snapshot is not stale: it has no feed yet (the
    shell may pass the account's creation time instead to hold new bridges to the
    same limit).
    """
    if isinstance(stale_after_seconds, float) or stale_after_seconds <= 0:
        raise InvalidGuardSettings(
            f"stale_after_seconds must be a positive int or Decimal, got {stale_after_seconds!r}"
        )
    limit = Decimal(stale_after_seconds)
    if last_snapshot_at is None:
        return StaleDecision(
            is_stale=False,
            was_stale=was_stale,
            age_seconds=None,
            stale_after_seconds=limit,
            message="feed: no snapshot received yet",
        )
    # Bridge clocks can run ahead of ours; a snapshot from the future is simply fresh.
    age = max(_seconds(now - last_snapshot_at), Decimal(0))
    is_stale = age > limit
    if is_stale:
        message = f"feed stale: no snapshot for {age} s (limit {limit} s)"
    elif was_stale:
        message = f"feed back: last snapshot {age} s ago"
    else:
        message = f"feed live: last snapshot {age} s ago"
    return StaleDecision(
        is_stale=is_stale,
        was_stale=was_stale,
        age_seconds=age,
        stale_after_seconds=limit,
        message=message,
    )


def _seconds(delta: timedelta) -> Decimal:
    # timedelta.total_seconds() is a float; build the exact value from its parts.
    whole = Decimal(delta.days * 86400 + delta.seconds)
    if not delta.microseconds:
        return whole
    return whole + Decimal(delta.microseconds) / 1_000_000


class StaleFeedGuard:
    name = STALE_FEED
    trigger = Trigger.CLOCK
    may_cause = MayCause(
        alerts=frozenset({STALE_FEED}),
        audit_entries=frozenset({"feed_stale"}),
        remembers=frozenset({"feed_stale", "status", "error_message"}),
    )

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        last_sync_at = inputs.stored["last_sync_at"]
        was_stale = inputs.stored["feed_stale"]
        decision = evaluate_stale(
            last_sync_at, inputs.at, inputs.config["stale_after_seconds"], was_stale=was_stale
        )
        if not decision.is_stale or was_stale:
            return GuardVerdict()
        return GuardVerdict(
            records=(
                GuardAlert(STALE_FEED, "critical", decision.message, details={"last_sync_at": last_sync_at}),
                GuardAuditEntry("feed_stale", decision.message),
            ),
            remember=MappingProxyType(
                {"feed_stale": True, "status": "error", "error_message": decision.message}
            ),
        )
