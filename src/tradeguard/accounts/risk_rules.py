"""An account's risk rule set as JSON: what an owner sends and reads, and the rule set it builds.

The shape mirrors the domain's rules (`domain/guards/rules.py`) field for field; every check that
spans fields lives there, once, and its refusal comes back as a 422 at the rule's field
(`rules.2.steps.0.threshold.percent`). A period's zone may be `"server"`: the broker's server
time, given once for the set as `server_time_zone`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import time, timedelta
from functools import lru_cache
from typing import Annotated, Any

import orjson
from pydantic import Field, PlainSerializer, ValidationError, model_validator

from tradeguard.bodies import Location, RequestBody, invalid_fields
from tradeguard.domain.guards.drawdown import settings_rule_set
from tradeguard.domain.guards.presets import PRESETS, preset
from tradeguard.domain.guards.rules import (
    Basis,
    InvalidRule,
    Metric,
    Reference,
    Resume,
    ResumeMode,
    Rule,
    RuleSet,
    Scope,
    ScopeKind,
    Step,
    Threshold,
    Tier,
)
from tradeguard.domain.periods import InvalidPeriod, Period, PeriodKind
from tradeguard.values import ClockTime, Numeric, TimeZoneName

SERVER_TIME = "server"
_AS_NUMBER = PlainSerializer(float, return_type=float, when_used="json")
Money = Annotated[Numeric, Field(ge=0), _AS_NUMBER]
Percent = Annotated[Numeric, Field(gt=0, le=100), _AS_NUMBER]
Fraction = Annotated[Numeric, Field(ge=0, le=1), _AS_NUMBER]
Label = Annotated[str, Field(max_length=60, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ThresholdIn(RequestBody):
    amount: Money | None = None
    percent: Percent | None = None
    percent_of: Basis = Basis.REFERENCE
    floor: Money | None = None


class StepIn(RequestBody):
    tier: Tier
    threshold: ThresholdIn
    label: Label = ""


class PeriodIn(RequestBody):
    kind: PeriodKind
    time_zone: str = Field(description='an IANA zone name, or "server" for the set\'s server_time_zone')
    reset: ClockTime = Field(default="00:00", description="HH:MM, local to time_zone")


class ScopeIn(RequestBody):
    kind: ScopeKind = ScopeKind.ALL
    magics: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] = Field(default_factory=list, max_length=100)
    signals: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100
    )


class ResumeIn(RequestBody):
    mode: ResumeMode = ResumeMode.OWNER
    below: Fraction | None = None
    after_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] = 0


class RuleIn(RequestBody):
    id: str
    label: Label = ""
    metric: Metric
    reference: Reference = Reference.HIGH_WATER_MARK
    period: PeriodIn | None = None
    steps: list[StepIn] = Field(min_length=1, max_length=10)
    buffer: Fraction | None = None
    scope: ScopeIn = Field(default_factory=ScopeIn)
    resume: ResumeIn = Field(default_factory=ResumeIn)
    lock_at_initial: bool = False
    shadow: bool = False
    shadow_alerts: bool = False


class RuleSetIn(RequestBody):
    preset: str | None = Field(
        default=None,
        description=f"a firm's rules, before `rules`: {', '.join(PRESETS)}; needs initial_balance",
    )
    rules: list[RuleIn] = Field(default_factory=list, max_length=20)
    initial_balance: Annotated[Numeric, Field(gt=0), _AS_NUMBER] | None = None
    confirmations: Annotated[int, Field(ge=1, le=100)] = 1
    server_time_zone: TimeZoneName | None = None
    buffer: Annotated[Numeric, Field(gt=0, le=1), _AS_NUMBER] | None = Field(
        default=None, description="the buffer of every rule that has none of its own"
    )

    @model_validator(mode="after")
    def _builds_a_rule_set(self) -> RuleSetIn:
        self.to_domain()
        return self

    def to_domain(self) -> RuleSet:
        """The rule set, or a 422 at the field of the first rule that cannot work."""
        rules = list(self._preset_rules())
        for index, rule in enumerate(self.rules):
            try:
                rules.append(_rule(rule, self.server_time_zone))
            except InvalidRule as problem:
                raise _refusal(("rules", index), problem, rule) from None
        if self.buffer is not None:
            rules = [rule if rule.buffer is not None else replace(rule, buffer=self.buffer) for rule in rules]
        try:
            return RuleSet(
                rules=tuple(rules), initial_balance=self.initial_balance, confirmations=self.confirmations
            )
        except InvalidRule as problem:
            at: Location = ("rules", _index_of(self.rules, problem.rule)) if problem.rule else ()
            raise _refusal(at, problem, self) from None

    def _preset_rules(self) -> tuple[Rule, ...]:
        if self.preset is None:
            return ()
        if self.initial_balance is None:
            problem = InvalidRule(
                None, "initial_balance", "a preset measures from the account's initial balance"
            )
            raise _refusal((), problem, None)
        try:
            chosen = preset(
                self.preset, initial_balance=self.initial_balance, server_time_zone=self.server_time_zone
            )
        except InvalidRule as problem:
            raise _refusal((), problem, self.preset) from None
        return chosen.rules


def _rule(rule: RuleIn, server_time_zone: str | None) -> Rule:
    return Rule(
        id=rule.id,
        label=rule.label,
        metric=rule.metric,
        reference=rule.reference,
        period=None if rule.period is None else _period(rule.period, server_time_zone, rule.id),
        steps=tuple(
            Step(
                tier=step.tier,
                label=step.label,
                threshold=Threshold(
                    amount=step.threshold.amount,
                    percent=step.threshold.percent,
                    percent_of=step.threshold.percent_of,
                    floor=step.threshold.floor,
                ),
            )
            for step in rule.steps
        ),
        buffer=rule.buffer,
        scope=Scope(
            kind=rule.scope.kind, magics=frozenset(rule.scope.magics), signals=frozenset(rule.scope.signals)
        ),
        resume=Resume(
            mode=rule.resume.mode, below=rule.resume.below, after=timedelta(seconds=rule.resume.after_seconds)
        ),
        lock_at_initial=rule.lock_at_initial,
        shadow=rule.shadow,
        shadow_alerts=rule.shadow_alerts,
    )


def _period(period: PeriodIn, server_time_zone: str | None, rule_id: str) -> Period:
    zone = period.time_zone
    if zone == SERVER_TIME:
        if server_time_zone is None:
            raise InvalidRule(rule_id, "period.time_zone", "server time needs the set's server_time_zone")
        zone = server_time_zone
    try:
        return Period(kind=period.kind, time_zone=zone, reset=time.fromisoformat(period.reset))
    except InvalidPeriod as problem:
        raise InvalidRule(rule_id, f"period.{problem.field}", str(problem).split(": ", 1)[1]) from None


def _index_of(rules: list[RuleIn], rule_id: str) -> int:
    """The position of the set's own rule of that id (a preset's rule it repeats comes before)."""
    return max((index for index, rule in enumerate(rules) if rule.id == rule_id), default=0)


_INDEXED = re.compile(r"^(\w+)\[(\d+)\]$")


def _refusal(at: Location, problem: InvalidRule, value: Any) -> ValidationError:
    """InvalidRule's dotted field (`steps[0].threshold.percent`) as a pydantic location."""
    location: list[str | int] = list(at)
    for part in problem.field.split("."):
        indexed = _INDEXED.match(part)
        location += [indexed.group(1), int(indexed.group(2))] if indexed else [part]
    return invalid_fields(RuleSetIn, [(tuple(location), problem.problem, value)])


def canonical_json(rule_set: RuleSetIn) -> str:
    """The stored form: the request's fields, defaults included, numbers as exact text."""
    return orjson.dumps(rule_set.model_dump(mode="python"), default=str).decode()


@lru_cache(maxsize=4096)
def _stored_rule_set(text: str) -> RuleSet:
    return RuleSetIn.model_validate_json(text).to_domain()


def rule_set_of(guard_rules: str | None, config: Mapping[str, Any]) -> RuleSet:
    """The rule set an account is judged by: its stored one, or its drawdown settings'."""
    if guard_rules is None:
        return settings_rule_set(config)
    return _stored_rule_set(guard_rules)


def rule_set_data(rule_set: RuleSet) -> dict[str, Any]:
    """A rule set in the shape `RuleSetIn` reads, for showing the rules an account is judged by."""
    return {
        "initial_balance": rule_set.initial_balance,
        "confirmations": rule_set.confirmations,
        "rules": [rule_data(rule) for rule in rule_set.rules],
    }


def rule_data(rule: Rule) -> dict[str, Any]:
    period = rule.period
    return {
        "id": rule.id,
        "label": rule.label,
        "metric": rule.metric.value,
        "reference": rule.reference.value,
        "period": None
        if period is None
        else {
            "kind": period.kind.value,
            "time_zone": period.time_zone,
            "reset": period.reset.strftime("%H:%M"),
        },
        "steps": [
            {
                "tier": step.tier.value,
                "label": step.label,
                "threshold": {
                    "amount": step.threshold.amount,
                    "percent": step.threshold.percent,
                    "percent_of": step.threshold.percent_of.value,
                    "floor": step.threshold.floor,
                },
            }
            for step in rule.steps
        ],
        "buffer": rule.buffer,
        "scope": {
            "kind": rule.scope.kind.value,
            "magics": sorted(rule.scope.magics),
            "signals": sorted(rule.scope.signals),
        },
        "resume": {
            "mode": rule.resume.mode.value,
            "below": rule.resume.below,
            "after_seconds": int(rule.resume.after.total_seconds()),
        },
        "lock_at_initial": rule.lock_at_initial,
        "shadow": rule.shadow,
        "shadow_alerts": rule.shadow_alerts,
    }
