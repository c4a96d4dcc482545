"""Every guard the shell runs, in the order it runs them: adding a guard is adding it here."""

from __future__ import annotations

from collections.abc import Iterable

from tradeguard.domain.guards.drawdown import DrawdownGuard
from tradeguard.domain.guards.guard import Action, Guard, Trigger
from tradeguard.domain.guards.market import MarketGuard
from tradeguard.domain.guards.stale import StaleFeedGuard


class InvalidGuardRegistry(ValueError):
    """Guards that cannot be run together: two with one name, or a clock guard that closes."""


def registry(guards: Iterable[Guard]) -> tuple[Guard, ...]:
    """The guards in order, checked: names are unique (they are causes and reasons in the records),
    and no guard run on the clock may close, since the clock brings no positions to close."""
    checked = tuple(guards)
    names = [guard.name for guard in checked]
    if len(set(names)) != len(names):
        raise InvalidGuardRegistry(f"guard names must be unique, got {names}")
    closes = {Action.CLOSE_POSITIONS, Action.CLOSE_SYMBOL}
    for guard in checked:
        if guard.trigger is Trigger.CLOCK and guard.may_cause.actions & closes:
            raise InvalidGuardRegistry(f"guard {guard.name!r} runs on the clock and cannot close positions")
    return checked


GUARDS = registry((DrawdownGuard(), MarketGuard(), StaleFeedGuard()))


def guards_on(trigger: Trigger, guards: Iterable[Guard] = GUARDS) -> tuple[Guard, ...]:
    return tuple(guard for guard in guards if guard.trigger is trigger)
