"""Broker time: simulated, so that a run covers minutes of it in a few fast steps.

Each step moves it `seconds_per_step` forward, never past the real clock. A run that starts its
clock in the past lets a 30 s grace period elapse in a test without the test waiting for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def wall_clock() -> datetime:
    return datetime.now(UTC)


class BrokerClock:
    """Broker time: `seconds_per_step` forward per step, never ahead of the real clock.

    Never ahead, because tradeguard reconciles at the earlier of a snapshot's time and its arrival,
    and refuses trades opened in the future. Strictly increasing, because a snapshot not newer than
    the last one applied is ignored. Without `seconds_per_step` it is the real clock itself: for
    accounts a real bridge reports, whose snapshots carry the bridge's own (real) time.
    """

    def __init__(
        self, start: datetime, seconds_per_step: float | None, wall: Callable[[], datetime] = wall_clock
    ) -> None:
        self.now = start
        self._step = None if seconds_per_step is None else timedelta(seconds=seconds_per_step)
        self._wall = wall

    @classmethod
    def real_time(cls, wall: Callable[[], datetime] = wall_clock) -> BrokerClock:
        return cls(wall(), None, wall)

    @classmethod
    def starting_back(
        cls, steps: int, seconds_per_step: float, wall: Callable[[], datetime] = wall_clock
    ) -> BrokerClock:
        """A clock that can run `steps` steps at full pace before it catches up with the real one."""
        return cls(wall() - timedelta(seconds=steps * seconds_per_step), seconds_per_step, wall)

    def tick(self) -> datetime:
        ahead = self._wall() if self._step is None else min(self.now + self._step, self._wall())
        self.now = max(self.now + timedelta(milliseconds=1), ahead)
        return self.now
