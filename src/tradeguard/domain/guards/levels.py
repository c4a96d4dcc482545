"""The vocabulary every guard shares: how bad things are, and what a decision tells the shell."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Protocol, runtime_checkable


class InvalidGuardSettings(ValueError):
    """Thresholds an owner configured that cannot work together, e.g. warning above critical."""


class GuardLevel(str, enum.Enum):
    """Ordered by severity, not alphabetically: NORMAL < WARNING < CRITICAL.

    The str mixin keeps the values readable in JSON and the database; the comparison
    operators are overridden because the inherited string order would rank
    "critical" below "normal".
    """

    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, GuardLevel):
            return NotImplemented
        return self.severity < other.severity

    def __le__(self, other: object) -> bool:
        if not isinstance(other, GuardLevel):
            return NotImplemented
        return self.severity <= other.severity

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, GuardLevel):
            return NotImplemented
        return self.severity > other.severity

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, GuardLevel):
            return NotImplemented
        return self.severity >= other.severity


_SEVERITY = {GuardLevel.NORMAL: 0, GuardLevel.WARNING: 1, GuardLevel.CRITICAL: 2}


def worst(levels: Iterable[GuardLevel]) -> GuardLevel:
    """The most severe of the levels; NORMAL when there are none."""
    return max(levels, default=GuardLevel.NORMAL)


@runtime_checkable
class GuardDecision(Protocol):
    """What the shell needs from any guard's verdict to alert and audit it.

    Alerts follow one rule for every guard: `should_alert` is true exactly when
    `level` differs from `previous_level`, recoveries included.
    """

    @property
    def level(self) -> GuardLevel: ...

    @property
    def previous_level(self) -> GuardLevel: ...

    @property
    def should_alert(self) -> bool: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...

    @property
    def message(self) -> str: ...
