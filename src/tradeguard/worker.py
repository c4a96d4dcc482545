"""The background work of a process: the sweep for what no snapshot brings, the equity history's
maintenance, and alert delivery.

Embedded, it runs inside the API process; in production, `tradeguard worker` runs it on its own,
as many times over as wanted (the sweep's row claims keep workers from acting twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from tradeguard.actions.delivery import DeliveryLoop, DeliveryPolicy
from tradeguard.actions.notifiers import notifiers_from_settings
from tradeguard.actions.sweep import SweepReport, sweep
from tradeguard.services import Services
from tradeguard.store.retention import HistoryPolicy, MaintenanceReport, maintain_history

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._services = services
        self._clock = clock

    async def sweep_once(self) -> SweepReport:
        settings = self._services.settings
        async with self._services.unit_of_work() as work:
            report = await sweep(
                work.session,
                now=self._clock(),
                notifiers=settings.notifier_names(),
                command_max_attempts=settings.command_max_attempts,
            )
            for account_id, owner_id in report.touched.items():
                work.account_changed(account_id, owner_id)
            for state in report.stale_states:
                work.publish_state(state)
        return report

    async def run_sweeps(self) -> None:
        interval = self._services.settings.sweep_interval_seconds
        while True:
            try:
                report = await self.sweep_once()
                if report.stale_accounts or report.expired_commands:
                    log.info(
                        "sweep: %d feeds stale, %d commands expired, %d retried",
                        len(report.stale_accounts),
                        report.expired_commands,
                        report.retried_commands,
                    )
            except Exception:
                log.exception("sweep failed; trying again in %.1f s", interval)
            await asyncio.sleep(interval)

    async def maintain_history_once(self) -> MaintenanceReport:
        """The equity history's partitions, roll-up and retention. It invalidates no cached view: a
        series cached before it holds points that were true, and its time to live ends it."""
        settings = self._services.settings
        policy = HistoryPolicy(
            raw_retention=timedelta(hours=settings.history_raw_retention_hours),
            minute_retention=timedelta(days=settings.history_minute_retention_days),
            partitions_ahead=settings.history_partitions_ahead,
        )
        async with self._services.write_session() as session:
            report = await maintain_history(session, now=self._clock(), policy=policy)
            await session.commit()
        return report

    async def run_history_maintenance(self) -> None:
        interval = self._services.settings.history_maintenance_interval_seconds
        while True:
            try:
                report = await self.maintain_history_once()
                if report.created or report.dropped:
                    log.info(
                        "equity history: %d partitions made, %d dropped, %d minutes rolled up",
                        len(report.created),
                        len(report.dropped),
                        report.minutes_written,
                    )
            except Exception:
                log.exception("equity history maintenance failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    async def run(self) -> None:
        """Sweeps, the history's maintenance and alert delivery side by side, until cancelled."""
        settings = self._services.settings
        async with httpx.AsyncClient(timeout=settings.notify_timeout_seconds) as http:
            delivery = DeliveryLoop(
                self._services.write_session,
                notifiers_from_settings(settings, http),
                DeliveryPolicy.from_settings(settings),
                interval=settings.sweep_interval_seconds,
                woken=self._services.alerts_raised,
            )
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.run_sweeps())
                tasks.create_task(self.run_history_maintenance())
                tasks.create_task(delivery.run())
