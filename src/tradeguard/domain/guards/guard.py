"""The one interface every guard implements, and what its verdict may ask of the shell.

A guard is a name, the event it runs on, a declaration of what it may cause (alert kinds, audit
entry kinds, actions, the account-state fields it remembers between events) and `decide`, a pure
function from `GuardInputs` to a `GuardVerdict`. The shell's one loop (`actions/guarding.py`) runs
every registered guard on its event and carries out verdicts; a verdict asking for anything its
guard did not declare is refused before any of it is carried out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol

from tradeguard.domain.guards.levels import GuardLevel
from tradeguard.domain.model import BrokerPosition, Quote
from tradeguard.domain.trading import TradingState


class Trigger(str, enum.Enum):
    """The event a guard is run on."""

    SNAPSHOT = "snapshot"
    """A snapshot of the account was applied: its equity, balance, positions and quotes are new."""
    CLOCK = "clock"
    """The sweep's tick: no snapshot, only the time that has passed."""


class Action(str, enum.Enum):
    HALT = "halt"
    """Latch the account's trading state to halted; the shell raises a `halt` alert and a `halted`
    audit entry with it, once, when the account was not halted already."""
    CLOSE_POSITIONS = "close_positions"
    """A close command for each named position of the snapshot, cause the guard's name."""
    CLOSE_SYMBOL = "close_symbol"
    """A close command for each position of the snapshot in the named symbols."""
    RESUME = "resume"
    """Lift the account's halt: the shell re-arms it, cancels the guard's close commands not yet
    carried out, and raises a `rearmed` alert and audit entry with the reason."""


@dataclass(frozen=True, slots=True)
class GuardAlert:
    kind: str
    level: str
    message: str
    symbol: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuardAuditEntry:
    """`reason` is usually the guard's name; the stale feed's entry has always gone without one."""

    event_type: str
    message: str
    reason: str | None = None
    symbol: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuardInputs:
    """Everything a guard may read, as plain values.

    `at` is the moment judged: the snapshot's own time on SNAPSHOT (it places the snapshot in a
    trading day), the sweep's clock on CLOCK. `config` is the account's guard configuration by
    field name; `stored` the account's state as it was before this event, by field name, JSON
    fields decoded. On CLOCK, `equity` and `balance` are the last stored ones, and there are no
    positions or quotes.
    """

    account_id: int
    at: datetime
    config: Mapping[str, Any]
    stored: Mapping[str, Any]
    trading: TradingState
    equity: Decimal | None
    balance: Decimal | None
    positions: tuple[BrokerPosition, ...] = ()
    quotes: tuple[Quote, ...] = ()
    matched_signals: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    """every position matched to an expected trade, by ticket: the trade's signal, None without one"""


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What one guard asks of the shell after one event.

    `records` are alerts and audit entries in the order they are to be written. `remember` holds
    the account-state fields to write, by name. `halt` is the reason to halt, when the guard halts;
    `resume` the reason to lift a halt, when the guard lifts it.
    """

    records: tuple[GuardAlert | GuardAuditEntry, ...] = ()
    remember: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    halt: str | None = None
    close_tickets: tuple[str, ...] = ()
    close_symbols: tuple[str, ...] = ()
    resume: str | None = None

    @property
    def asks_anything(self) -> bool:
        return bool(self.records or self.remember or self.actions)

    @property
    def alerts(self) -> tuple[GuardAlert, ...]:
        return tuple(record for record in self.records if isinstance(record, GuardAlert))

    @property
    def audit_entries(self) -> tuple[GuardAuditEntry, ...]:
        return tuple(record for record in self.records if isinstance(record, GuardAuditEntry))

    @property
    def actions(self) -> frozenset[Action]:
        asked = {
            Action.HALT: self.halt is not None,
            Action.CLOSE_POSITIONS: bool(self.close_tickets),
            Action.CLOSE_SYMBOL: bool(self.close_symbols),
            Action.RESUME: self.resume is not None,
        }
        return frozenset(action for action, wanted in asked.items() if wanted)


@dataclass(frozen=True, slots=True)
class MayCause:
    """A guard's declaration of everything its verdicts may ask for."""

    alerts: frozenset[str] = frozenset()
    audit_entries: frozenset[str] = frozenset()
    actions: frozenset[Action] = frozenset()
    remembers: frozenset[str] = frozenset()


class Guard(Protocol):
    @property
    def name(self) -> str:
        """Also the `reason` of its audit entries and the `cause` of its close commands."""
        ...

    @property
    def trigger(self) -> Trigger: ...

    @property
    def may_cause(self) -> MayCause: ...

    def decide(self, inputs: GuardInputs) -> GuardVerdict: ...


class UndeclaredEffect(RuntimeError):
    """A guard's verdict asked for something its declaration does not list: a bug in the guard."""


def check_declared(guard: Guard, verdict: GuardVerdict) -> None:
    declared = guard.may_cause
    undeclared = [
        *(f"alert {a.kind!r}" for a in verdict.alerts if a.kind not in declared.alerts),
        *(
            f"audit entry {e.event_type!r}"
            for e in verdict.audit_entries
            if e.event_type not in declared.audit_entries
        ),
        *(f"action {action.value!r}" for action in sorted(verdict.actions - declared.actions)),
        *(f"field {name!r}" for name in sorted(set(verdict.remember) - declared.remembers)),
    ]
    if undeclared:
        raise UndeclaredEffect(f"guard {guard.name!r} did not declare " + ", ".join(undeclared))


def alert_level(level: GuardLevel) -> str:
    """A return to normal is worth telling, as information."""
    return "info" if level is GuardLevel.NORMAL else level.value


def level_reached(
    guard: str,
    alert_kind: str,
    level: GuardLevel,
    message: str,
    details: Mapping[str, Any],
    *,
    symbol: str | None = None,
) -> tuple[GuardAlert, GuardAuditEntry]:
    """A guard's level changed: the alert, and the `guard_level` audit entry recording it."""
    return (
        GuardAlert(alert_kind, alert_level(level), message, symbol=symbol, details=details),
        GuardAuditEntry(
            "guard_level", message, reason=guard, symbol=symbol, details={"level": level.value, **details}
        ),
    )
