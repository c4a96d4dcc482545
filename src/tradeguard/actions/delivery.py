"""Alert delivery: background rounds that send due deliveries and record each outcome.

A round claims due deliveries by pushing their `next_attempt_at` out by a lease and commits, sends
outside any transaction, then writes the outcomes in a second short transaction. A slow notifier
therefore never holds a transaction (nor, on SQLite, the write lock the ingest step waits for), and
a worker that dies mid-send leaves its rows to whoever claims them after the lease: delivery is at
least once, which the webhook's `X-Tradeguard-Delivery` header lets receivers absorb.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.notifiers import AlertMessage, DeliveryFailed, Notifier
from tradeguard.settings import Settings
from tradeguard.store.models import Alert, AlertDelivery

log = logging.getLogger(__name__)

SessionOpener = Callable[[], AbstractAsyncContextManager[AsyncSession]]

NOT_CONFIGURED = "notifier not configured"
# Room for the claim's commit and the event loop's scheduling on top of the send's own time-out.
LEASE_MARGIN = timedelta(seconds=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float
    max_backoff_seconds: float = 300.0
    batch: int = 50
    concurrency: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.notify_max_attempts,
            backoff_seconds=settings.notify_backoff_seconds,
            timeout_seconds=settings.notify_timeout_seconds,
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout_seconds) + LEASE_MARGIN

    def retry_delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """The wait before the next try, after `attempts` failed ones; the receiver's own wish wins."""
        if retry_after is not None:
            return timedelta(seconds=retry_after)
        return timedelta(seconds=min(self.backoff_seconds * 2 ** (attempts - 1), self.max_backoff_seconds))

    def outcome(
        self, attempts_before: int, failure: DeliveryFailed | None, *, now: datetime
    ) -> dict[str, Any]:
        """The column values that record one more attempt."""
        attempts = attempts_before + 1
        if failure is None:
            return {"state": "delivered", "attempts": attempts, "delivered_at": now}
        if failure.permanent or attempts >= self.max_attempts:
            return {"state": "failed", "attempts": attempts, "last_error": failure.message}
        return {
            "state": "pending",
            "attempts": attempts,
            "last_error": failure.message,
            "next_attempt_at": now + self.retry_delay(attempts, failure.retry_after),
        }


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    notifier: str
    attempts_before: int
    alert: AlertMessage


async def deliver_due(
    sessions: SessionOpener,
    notifiers: dict[str, Notifier],
    policy: DeliveryPolicy,
    *,
    now: datetime,
) -> int:
    """Send up to `policy.batch` due deliveries and record the outcomes; returns how many were sent.

    `sessions` should be `Services.write_session`, so that on SQLite these writes queue behind the
    same lock as the ingest step's.
    """
    lease_until = now + policy.lease
    claims = await _claim_due(sessions, list(notifiers), policy.batch, now=now, lease_until=lease_until)
    if not claims:
        return 0
    semaphore = asyncio.Semaphore(policy.concurrency)

    async def attempt(claim: _Claim) -> DeliveryFailed | None:
        async with semaphore:
            return await _send(notifiers[claim.notifier], claim.alert, policy.timeout_seconds)

    failures = await asyncio.gather(*(attempt(claim) for claim in claims))
    await _record(
        sessions, policy, list(zip(claims, failures, strict=True)), now=now, lease_until=lease_until
    )
    return len(claims)


async def _claim_due(
    sessions: SessionOpener, names: list[str], batch: int, *, now: datetime, lease_until: datetime
) -> list[_Claim]:
    due = (AlertDelivery.state == "pending", AlertDelivery.next_attempt_at <= now)
    async with sessions() as session:
        unconfigured = await session.execute(
            update(AlertDelivery)
            .where(*due, AlertDelivery.notifier.not_in(names))
            .values(state="failed", last_error=NOT_CONFIGURED)
            .execution_options(synchronize_session=False)
        )
        if unconfigured.rowcount:
            log.warning("%d alert deliveries failed: %s", unconfigured.rowcount, NOT_CONFIGURED)
        # SKIP LOCKED lets concurrent PostgreSQL workers claim disjoint rows instead of waiting on
        # each other; SQLite has no row locks and serializes the whole statement instead.
        candidates = (
            select(AlertDelivery.id)
            .where(*due, AlertDelivery.notifier.in_(names))
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claimed = (
            await session.execute(
                update(AlertDelivery)
                .where(AlertDelivery.id.in_(candidates))
                .values(next_attempt_at=lease_until)
                .returning(
                    AlertDelivery.id, AlertDelivery.alert_id, AlertDelivery.notifier, AlertDelivery.attempts
                )
                .execution_options(synchronize_session=False)
            )
        ).all()
        alert_ids = {row.alert_id for row in claimed}
        alerts = {
            alert.id: AlertMessage.from_row(alert)
            for alert in await session.scalars(select(Alert).where(Alert.id.in_(alert_ids)))
        }
        await session.commit()
    return [
        _Claim(
            delivery_id=row.id,
            notifier=row.notifier,
            attempts_before=row.attempts,
            alert=alerts[row.alert_id],
        )
        for row in claimed
    ]


async def _send(notifier: Notifier, alert: AlertMessage, timeout_seconds: float) -> DeliveryFailed | None:
    try:
        # The HTTP client's time-outs bound each phase; this bounds the whole send, which the lease relies on.
        async with asyncio.timeout(timeout_seconds):
            await notifier.send(alert)
    except DeliveryFailed as failure:
        return failure
    except TimeoutError:
        return DeliveryFailed(f"{notifier.name} timed out after {timeout_seconds:g}s")
    except Exception as error:
        log.exception("notifier %s raised unexpectedly on alert %d", notifier.name, alert.id)
        return DeliveryFailed(f"{notifier.name} raised {type(error).__name__}")
    return None


async def _record(
    sessions: SessionOpener,
    policy: DeliveryPolicy,
    results: Sequence[tuple[_Claim, DeliveryFailed | None]],
    *,
    now: datetime,
    lease_until: datetime,
) -> None:
    async with sessions() as session:
        for claim, failure in results:
            values = policy.outcome(claim.attempts_before, failure, now=now)
            # A send that outlived its lease may have been claimed again by another worker, whose
            # record is the one that counts; the unchanged lease shows the row is still ours.
            await session.execute(
                update(AlertDelivery)
                .where(
                    AlertDelivery.id == claim.delivery_id,
                    AlertDelivery.state == "pending",
                    AlertDelivery.next_attempt_at == lease_until,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if failure is not None:
                log.warning(
                    "alert %d to %s: attempt %d of %d failed%s: %s",
                    claim.alert.id,
                    claim.notifier,
                    values["attempts"],
                    policy.max_attempts,
                    "; giving up" if values["state"] == "failed" else "",
                    failure.message,
                )
        await session.commit()


class DeliveryLoop:
    """Delivery rounds every `interval` seconds, or sooner after `wake()`; runs until cancelled."""

    def __init__(
        self,
        sessions: SessionOpener,
        notifiers: dict[str, Notifier],
        policy: DeliveryPolicy,
        *,
        interval: float,
        clock: Callable[[], datetime] = utc_now,
        woken: asyncio.Event | None = None,
    ):
        """`woken` may be an event shared with whatever learns of new alerts, instead of calling wake()."""
        self._sessions = sessions
        self._notifiers = notifiers
        self._policy = policy
        self._interval = interval
        self._clock = clock
        self._woken = woken or asyncio.Event()

    def wake(self) -> None:
        """Start a round now rather than at the next interval, e.g. after a commit that raised alerts."""
        self._woken.set()

    async def run(self) -> None:
        while True:
            # Cleared before the round, so a wake() that arrives during it triggers the next one.
            self._woken.clear()
            sent = await self._round()
            if sent == self._policy.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._interval)

    async def _round(self) -> int:
        try:
            return await deliver_due(self._sessions, self._notifiers, self._policy, now=self._clock())
        except Exception:
            log.exception("alert delivery round failed; next round in %gs", self._interval)
            return 0
