"""Risk rules as data: what an account's guard measures, against what, over which period, and what it does.

A rule measures a metric (equity, balance, or the floating P&L of its scope) as a loss from a
reference (the initial balance, the balance or equity at the period's start, the high-water mark,
or the highest balance at a period's end), over a period or the account's whole life, and climbs
a ladder of steps: each a threshold (money, percent, a floor, or several at once: the first one
reached counts) and a tier (alert, halt new trades, close everything, close the rule's scope).
A rule may act before its hard limits (`buffer`), only on a strategy's positions (`scope`), re-arm
by itself (`resume`), or run in shadow, recording what it would have done and doing nothing.

Everything is checked on construction: a rule set that contradicts itself raises `InvalidRule`
naming the rule and the field.
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from tradeguard.domain.guards.levels import GuardLevel
from tradeguard.domain.periods import Anchor, Period


class Metric(enum.StrEnum):
    EQUITY = "equity"
    """equity, floating P&L, swap and commission included: what prop firms' limits watch"""
    BALANCE = "balance"
    """closed results only"""
    FLOATING = "floating"
    """the floating loss of the rule's scope (balance minus equity, for the whole account): its
    reference is the balance, whatever `reference` says"""


class Reference(enum.StrEnum):
    INITIAL_BALANCE = "initial_balance"
    PERIOD_START_BALANCE = "period_start_balance"
    PERIOD_START_EQUITY = "period_start_equity"
    PERIOD_START_HIGHER = "period_start_higher"
    """the higher of the balance and the equity at the period's start"""
    HIGH_WATER_MARK = "high_water_mark"
    """the highest equity seen: in the period, or ever for a rule without one"""
    TRAILING_HIGH_BALANCE = "trailing_high_balance"
    """the highest balance at the end of any earlier period, or the initial balance if higher: it
    only rises, and moves only at a period's boundary"""


_PERIOD_REFERENCES = frozenset(
    {
        Reference.PERIOD_START_BALANCE,
        Reference.PERIOD_START_EQUITY,
        Reference.PERIOD_START_HIGHER,
        Reference.TRAILING_HIGH_BALANCE,
    }
)


class Basis(enum.StrEnum):
    """What a percent threshold is a percent of."""

    REFERENCE = "reference"
    INITIAL_BALANCE = "initial_balance"


class Tier(enum.StrEnum):
    ALERT = "alert"
    HALT = "halt"
    """stop new trades: the account's trading state becomes halted"""
    CLOSE_ALL = "close_all"
    """halt, and close every position of the account"""
    CLOSE_SCOPE = "close_scope"
    """halt, and close the positions of the rule's scope"""

    @property
    def severity(self) -> int:
        return _TIER_SEVERITY[self]

    @property
    def level(self) -> GuardLevel:
        return GuardLevel.WARNING if self is Tier.ALERT else GuardLevel.CRITICAL

    @property
    def closes(self) -> bool:
        return self in (Tier.CLOSE_ALL, Tier.CLOSE_SCOPE)


_TIER_SEVERITY = {Tier.ALERT: 0, Tier.HALT: 1, Tier.CLOSE_ALL: 2, Tier.CLOSE_SCOPE: 2}


class ScopeKind(enum.StrEnum):
    ALL = "all"
    STRATEGY = "strategy"
    """positions of the given magic numbers, or matched to expected trades of the given signals"""
    MANUAL = "manual"
    """positions opened by hand: magic 0 and matched to no expected trade"""


class ResumeMode(enum.StrEnum):
    OWNER = "owner"
    """only the account's owner re-arms a halt"""
    NEXT_PERIOD = "next_period"
    """re-armed at the rule's next period boundary"""
    COOL_DOWN = "cool_down"
    """re-armed once the loss has stayed under `below` of the acting limit for `after`"""


class InvalidRule(ValueError):
    """A rule set that cannot work: `rule` is the rule's id (or its position when it has none),
    `field` the path of the offending field inside it."""

    def __init__(self, rule: str | None, field: str, problem: str) -> None:
        where = f"rule {rule!r}: " if rule is not None else ""
        super().__init__(f"{where}{field}: {problem}")
        self.rule = rule
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Threshold:
    """When a loss reaches `amount` (money) or `percent` (of `percent_of`), or the metric falls below
    `floor` (money): whichever comes first."""

    amount: Decimal | None = None
    percent: Decimal | None = None
    percent_of: Basis = Basis.REFERENCE
    floor: Decimal | None = None

    def check(self, rule: str | None, path: str) -> None:
        if self.amount is None and self.percent is None and self.floor is None:
            raise InvalidRule(rule, path, "a threshold needs an amount, a percent or a floor")
        for name in ("amount", "percent", "floor"):
            value = getattr(self, name)
            if isinstance(value, float):
                raise InvalidRule(rule, f"{path}.{name}", "must be a Decimal, not a float")
        if self.amount is not None and self.amount <= 0:
            raise InvalidRule(rule, f"{path}.amount", f"must be positive, got {self.amount}")
        if self.percent is not None and not 0 < self.percent <= 100:
            raise InvalidRule(rule, f"{path}.percent", f"must be within (0, 100], got {self.percent}")
        if self.floor is not None and self.floor < 0:
            raise InvalidRule(rule, f"{path}.floor", f"must not be negative, got {self.floor}")


@dataclass(frozen=True, slots=True)
class Step:
    tier: Tier
    threshold: Threshold
    label: str = ""
    """how messages name this step's limit ("critical", "limit"); the tier's name when empty"""

    @property
    def name(self) -> str:
        return self.label or self.tier.value


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind = ScopeKind.ALL
    magics: frozenset[int] = frozenset()
    signals: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Resume:
    mode: ResumeMode = ResumeMode.OWNER
    below: Decimal | None = None
    """cool-down: the fraction of the first acting step's limit the loss must be back under"""
    after: timedelta = timedelta(0)
    """cool-down: how long it must stay there"""


_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    metric: Metric
    steps: tuple[Step, ...]
    reference: Reference = Reference.HIGH_WATER_MARK
    period: Period | None = None
    buffer: Decimal | None = None
    """act at this fraction of every step's limit (0.9: at 4.5 % for a 5 % limit)"""
    scope: Scope = field(default_factory=Scope)
    resume: Resume = field(default_factory=Resume)
    lock_at_initial: bool = False
    """a trailing reference's floor stops rising once it reaches the initial balance"""
    shadow: bool = False
    """record what the rule would do, act on nothing"""
    shadow_alerts: bool = False
    label: str = ""
    """how messages name what the rule measures ("drawdown", "daily loss"); the id when empty"""

    def __post_init__(self) -> None:
        rid = self.id
        if not isinstance(rid, str) or not _RULE_ID.match(rid):
            raise InvalidRule(None, "id", f"must be 1 to 40 of a-z, 0-9, '_' and '-', got {rid!r}")
        if not self.steps:
            raise InvalidRule(rid, "steps", "a rule needs at least one step")
        for index, step in enumerate(self.steps):
            step.threshold.check(rid, f"steps[{index}].threshold")
            if step.tier is Tier.CLOSE_SCOPE and self.scope.kind is ScopeKind.ALL:
                raise InvalidRule(rid, f"steps[{index}].tier", "close_scope needs a scope other than all")
        self._check_ladder()
        if self.period is not None and self.period.anchor is Anchor.ROLLING:
            raise InvalidRule(
                rid, "period.anchor", "a rolling window needs the account's history; use a calendar period"
            )
        if self.reference in _PERIOD_REFERENCES and self.period is None:
            raise InvalidRule(rid, "period", f"reference {self.reference.value} needs a period")
        if self.lock_at_initial and self.reference is not Reference.TRAILING_HIGH_BALANCE:
            raise InvalidRule(rid, "lock_at_initial", "only a trailing_high_balance reference locks")
        if isinstance(self.buffer, float):
            raise InvalidRule(rid, "buffer", "must be a Decimal, not a float")
        if self.buffer is not None and not 0 < self.buffer <= 1:
            raise InvalidRule(rid, "buffer", f"must be a fraction within (0, 1], got {self.buffer}")
        self._check_scope()
        self._check_resume()

    @property
    def name(self) -> str:
        return self.label or self.id

    @property
    def acting_steps(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.tier is not Tier.ALERT)

    def _check_ladder(self) -> None:
        """Steps climb: each at least as severe as the one before, and each limit it shares with the
        one before further from the reference (a higher amount or percent, a lower floor)."""
        for index, (lower, upper) in enumerate(itertools.pairwise(self.steps), start=1):
            if upper.tier.severity < lower.tier.severity:
                raise InvalidRule(
                    self.id,
                    f"steps[{index}].tier",
                    f"{upper.tier.value} is milder than the step before it ({lower.tier.value})",
                )
            below, above = lower.threshold, upper.threshold
            if (
                below.percent is not None
                and above.percent is not None
                and below.percent_of != above.percent_of
            ):
                raise InvalidRule(
                    self.id,
                    f"steps[{index}].threshold.percent_of",
                    "steps must share what their percent is of",
                )
            for name, rises in (("amount", True), ("percent", True), ("floor", False)):
                was, now = getattr(below, name), getattr(above, name)
                if was is None or now is None:
                    continue
                if (now <= was) if rises else (now >= was):
                    raise InvalidRule(
                        self.id,
                        f"steps[{index - 1}].threshold.{name}",
                        f"must be {'below' if rises else 'above'} the next step's {name} ({now})",
                    )

    def _check_scope(self) -> None:
        scope = self.scope
        if scope.kind is ScopeKind.STRATEGY and not (scope.magics or scope.signals):
            raise InvalidRule(self.id, "scope", "a strategy scope needs magic numbers or signals")
        if scope.kind is not ScopeKind.STRATEGY and (scope.magics or scope.signals):
            raise InvalidRule(
                self.id, "scope", f"a scope of {scope.kind.value} takes no magic numbers or signals"
            )
        if any(magic < 0 for magic in scope.magics):
            raise InvalidRule(self.id, "scope.magics", "magic numbers are not negative")

    def _check_resume(self) -> None:
        resume = self.resume
        if resume.mode is ResumeMode.NEXT_PERIOD and self.period is None:
            raise InvalidRule(self.id, "resume.mode", "next_period needs the rule to have a period")
        if resume.mode is ResumeMode.COOL_DOWN:
            if isinstance(resume.below, float):
                raise InvalidRule(self.id, "resume.below", "must be a Decimal, not a float")
            if resume.below is None or not 0 <= resume.below < 1:
                raise InvalidRule(self.id, "resume.below", "a cool-down needs a fraction within [0, 1)")
            if resume.after < timedelta(0):
                raise InvalidRule(self.id, "resume.after", "must not be negative")
            self._check_cool_down_limit()
        elif resume.below is not None:
            raise InvalidRule(self.id, "resume.below", f"only a cool_down takes one, not {resume.mode.value}")
        elif resume.after:
            raise InvalidRule(self.id, "resume.after", f"only a cool_down takes one, not {resume.mode.value}")
        if resume.mode is not ResumeMode.OWNER and not self.acting_steps:
            raise InvalidRule(self.id, "resume.mode", "a rule that only alerts never halts, so never resumes")

    def _check_cool_down_limit(self) -> None:
        """A cool-down measures the loss against the first acting step's limit: a floor alone gives
        it none, and the rule would never resume."""
        for index, step in enumerate(self.steps):
            if step.tier is Tier.ALERT:
                continue
            if step.threshold.amount is None and step.threshold.percent is None:
                raise InvalidRule(
                    self.id,
                    f"steps[{index}].threshold",
                    "a cool-down needs the first acting step to limit the loss (an amount or a percent)",
                )
            return


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    initial_balance: Decimal | None = None
    """the account's starting capital; the first balance seen when not given"""
    confirmations: int = 1
    """how many snapshots in a row must breach an acting step before it acts"""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise InvalidRule(rule.id, "id", "two rules have this id")
            seen.add(rule.id)
        if self.initial_balance is not None and not isinstance(self.initial_balance, Decimal):
            raise InvalidRule(None, "initial_balance", f"must be a Decimal, got {self.initial_balance!r}")
        if self.initial_balance is not None and self.initial_balance <= 0:
            raise InvalidRule(None, "initial_balance", f"must be positive, got {self.initial_balance}")
        confirmations = self.confirmations
        if isinstance(confirmations, bool) or not isinstance(confirmations, int) or confirmations < 1:
            raise InvalidRule(
                None, "confirmations", f"must be an integer of at least 1, got {confirmations!r}"
            )
