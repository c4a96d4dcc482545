"""Replaying a rule set over an account's equity history: what its guard would have done, and when.

The points go through `evaluate_rules`, the function the live guard runs, one by one in time
order, from no state at the first point, each decision's halt carried into the next: a halt stays
until a rule's own resume lifts it, since the history does not tell when an owner would have
re-armed. The history holds no positions, so a close is "close all positions" (or the rule's
scope's), never a list of tickets, and a rule measuring the floating P&L of a scope other than
the whole account cannot be judged from it at all.

Nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from tradeguard.domain.guards.rule_evaluation import (
    RuleResult,
    RulesDecision,
    RuleSetState,
    StepStanding,
    evaluate_rules,
)
from tradeguard.domain.guards.rules import Metric, Rule, RuleSet, ScopeKind, Tier


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    taken_at: datetime
    balance: Decimal
    equity: Decimal


class UnreplayableRule(ValueError):
    """A rule the history cannot judge: `rule` is its id."""

    def __init__(self, rule: str, problem: str) -> None:
        super().__init__(f"rule {rule!r}: {problem}")
        self.rule = rule


def refuse_unreplayable(rule_set: RuleSet) -> None:
    """Raise `UnreplayableRule` for the first rule that needs positions the history does not hold."""
    for rule in rule_set.rules:
        if rule.metric is Metric.FLOATING and rule.scope.kind is not ScopeKind.ALL:
            raise UnreplayableRule(
                rule.id,
                f"measures the floating P&L of its {rule.scope.kind.value} scope, and the history "
                "holds no positions: it cannot be replayed",
            )


def concerned_standing(result: RuleResult) -> StepStanding:
    """The step a rule's result is about: the one it is at, else the one it just left, else the
    first one that acts (the first step when none acts)."""
    index = result.step if result.step is not None else result.previous_step
    if index is None:
        index = _first_acting(result.rule)
    return result.standings[index]


def acting_floor(result: RuleResult) -> Decimal:
    """The metric's value at which the rule's first acting step is reached on this point: its
    reference less its acting limit, or its floor when that comes first."""
    standing = result.standings[_first_acting(result.rule)]
    return result.value - standing.headroom


def _first_acting(rule: Rule) -> int:
    return next((index for index, step in enumerate(rule.steps) if step.tier is not Tier.ALERT), 0)


@dataclass(frozen=True, slots=True)
class ReplayedPoint:
    point: HistoryPoint
    decision: RulesDecision

    @property
    def step_changes(self) -> tuple[RuleResult, ...]:
        return tuple(result for result in self.decision.results if result.changed)

    @property
    def closes(self) -> tuple[RuleResult, ...]:
        """Live rules stepping into a tier that closes: the guard would send its close commands."""
        return tuple(
            result
            for result in self.decision.live
            if result.changed and result.tier is not None and result.tier.closes
        )

    @property
    def halts(self) -> tuple[RuleResult, ...]:
        """Live rules stepping into a tier that halts (the account may be halted already)."""
        return tuple(result for result in self.decision.live if result.changed and result.halts)

    @property
    def newsworthy(self) -> bool:
        decision = self.decision
        return decision.level_changed or decision.newly_halted or decision.resumed or bool(self.step_changes)

    @property
    def floors(self) -> Mapping[str, Decimal]:
        """Each rule's acting floor on this point, by rule id."""
        return MappingProxyType({result.rule.id: acting_floor(result) for result in self.decision.results})


@dataclass(frozen=True, slots=True)
class Replay:
    rule_set: RuleSet
    points: tuple[ReplayedPoint, ...]

    @property
    def changes(self) -> tuple[ReplayedPoint, ...]:
        """The points where something changed: a level, a rule's step, a halt or a resume."""
        return tuple(point for point in self.points if point.newsworthy)


def replay(rule_set: RuleSet, history: Iterable[HistoryPoint]) -> Replay:
    """Judge the points in turn as the guard would have: `history` in time order."""
    refuse_unreplayable(rule_set)
    state: RuleSetState | None = None
    halted = False
    replayed: list[ReplayedPoint] = []
    for point in history:
        decision = evaluate_rules(
            rule_set, state, equity=point.equity, balance=point.balance, now=point.taken_at, halted=halted
        )
        replayed.append(ReplayedPoint(point, decision))
        state, halted = decision.next_state, decision.halted
    return Replay(rule_set, tuple(replayed))


def deciding_point(replayed: Replay, event_type: str) -> ReplayedPoint | None:
    """The latest point that did what an audit entry of `event_type` records: a halt for `halted`,
    a resume for `rearmed`, a level change for `guard_level`, a shadow rule's step change for
    `shadow_decision`, a change of any kind for any other entry. None when no point did."""
    match event_type:
        case "halted":
            did = _halted
        case "rearmed":
            did = _resumed
        case "guard_level":
            did = _level_changed
        case "shadow_decision":
            did = _shadow_changed
        case _:
            did = _newsworthy
    return next((point for point in reversed(replayed.points) if did(point)), None)


def _halted(point: ReplayedPoint) -> bool:
    return point.decision.newly_halted or bool(point.halts)


def _resumed(point: ReplayedPoint) -> bool:
    return point.decision.resumed


def _level_changed(point: ReplayedPoint) -> bool:
    return point.decision.level_changed


def _shadow_changed(point: ReplayedPoint) -> bool:
    return bool(point.decision.shadow_changes)


def _newsworthy(point: ReplayedPoint) -> bool:
    return point.newsworthy
