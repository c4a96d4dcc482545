"""The replay's walk: known series judged point by point, as the guard would have judged them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from tradeguard.domain.guards.levels import GuardLevel
from tradeguard.domain.guards.rules import (
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
from tradeguard.domain.periods import Period, PeriodKind
from tradeguard.domain.replay import HistoryPoint, UnreplayableRule, deciding_point, replay

D = Decimal
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def series(
    *equities: str, balance: str = "10000", every: timedelta = timedelta(minutes=1)
) -> list[HistoryPoint]:
    return [
        HistoryPoint(START + every * index, D(balance), D(equity)) for index, equity in enumerate(equities)
    ]


def drawdown(**fields) -> Rule:
    """A warning at 5 % below the high-water mark, all positions closed at 10 %."""
    return Rule(
        id="drawdown",
        metric=Metric.EQUITY,
        reference=Reference.HIGH_WATER_MARK,
        steps=(
            Step(Tier.ALERT, Threshold(percent=D(5)), label="warning"),
            Step(Tier.CLOSE_ALL, Threshold(percent=D(10)), label="critical"),
        ),
        **fields,
    )


def test_the_halt_comes_at_the_first_point_past_the_limit_and_stays_without_an_owner():
    points = series("10000", "11000", "10400", "9901", "9900", "10500", "10600")

    replayed = replay(RuleSet(rules=(drawdown(),)), points)

    decisions = [point.decision for point in replayed.points]
    assert [decision.level for decision in decisions] == [
        GuardLevel.NORMAL,
        GuardLevel.NORMAL,
        GuardLevel.WARNING,
        GuardLevel.WARNING,
        GuardLevel.CRITICAL,
        GuardLevel.NORMAL,
        GuardLevel.NORMAL,
    ]
    assert [decision.newly_halted for decision in decisions] == [False] * 4 + [True, False, False]
    # Back under its steps, the rule has no resume of its own: only an owner re-arms it.
    assert [decision.halted for decision in decisions] == [False] * 4 + [True] * 3
    assert [point.point.equity for point in replayed.changes] == [D(10400), D(9900), D(10500)]
    [close] = replayed.points[4].closes
    assert close.rule.id == "drawdown"
    # The acting floor follows the high-water mark: 10 % below 10,000, then below 11,000.
    assert [point.floors["drawdown"] for point in replayed.points] == [D(9000)] + [D(9900)] * 6


def test_a_next_period_rule_resumes_at_the_first_point_of_the_next_day_not_before():
    daily = Rule(
        id="daily_loss",
        metric=Metric.EQUITY,
        reference=Reference.PERIOD_START_BALANCE,
        period=Period(PeriodKind.DAY, "UTC", time(0, 0)),
        steps=(Step(Tier.HALT, Threshold(amount=D(500))),),
        resume=Resume(mode=ResumeMode.NEXT_PERIOD),
    )
    day = datetime(2026, 11, 30, tzinfo=UTC)
    points = [
        HistoryPoint(day + timedelta(hours=10), D(10000), D(10000)),
        HistoryPoint(day + timedelta(hours=12), D(10000), D(9400)),
        HistoryPoint(day + timedelta(hours=23, minutes=59), D(10000), D(9600)),
        HistoryPoint(day + timedelta(days=1), D(10000), D(9600)),
        HistoryPoint(day + timedelta(days=1, hours=1), D(10000), D(9700)),
    ]

    replayed = replay(RuleSet(rules=(daily,)), points)

    assert [point.decision.halted for point in replayed.points] == [False, True, True, False, False]
    assert [point.decision.resumed for point in replayed.points] == [False, False, False, True, False]
    # Back under its limit before midnight it steps down, and the halt waits for the day's end.
    assert [point.point for point in replayed.changes] == points[1:4]
    assert replayed.points[2].decision.results[0].step is None
    assert deciding_point(replayed, "rearmed").point == points[3]
    assert deciding_point(replayed, "halted").point == points[1]


def test_a_rule_in_shadow_is_reported_with_what_it_would_do_and_acts_on_nothing():
    shadow = Rule(
        id="tight",
        metric=Metric.EQUITY,
        reference=Reference.INITIAL_BALANCE,
        steps=(Step(Tier.CLOSE_ALL, Threshold(amount=D(300))),),
        shadow=True,
    )
    points = series("10000", "9800", "9700", "9650", "9900")

    replayed = replay(RuleSet(rules=(drawdown(), shadow)), points)

    assert all(point.decision.level is GuardLevel.NORMAL for point in replayed.points)
    assert not any(point.decision.halted or point.closes for point in replayed.points)
    shadow_changes = [(point.point.equity, point.decision.shadow_changes) for point in replayed.changes]
    assert [
        (equity, [(r.rule.id, r.halts, r.tier) for r in changes]) for equity, changes in shadow_changes
    ] == [
        (D(9700), [("tight", True, Tier.CLOSE_ALL)]),
        (D(9900), [("tight", False, None)]),
    ]
    assert deciding_point(replayed, "shadow_decision").point.equity == D(9900)
    assert deciding_point(replayed, "halted") is None


def test_a_second_breach_after_a_recovery_is_what_decided_the_latest_halt():
    points = series("10000", "8900", "9800", "10000", "8800", "9000")

    replayed = replay(RuleSet(rules=(drawdown(),)), points)

    assert deciding_point(replayed, "halted").point == points[4]
    # The account stayed halted from the first breach on: the replay re-arms nothing.
    assert [point.decision.newly_halted for point in replayed.points] == [
        False,
        True,
        False,
        False,
        False,
        False,
    ]


def test_confirmations_hold_the_halt_until_enough_points_in_a_row_breach():
    points = series("10000", "8900", "8950", "8990", "9990")

    replayed = replay(RuleSet(rules=(drawdown(),), confirmations=3), points)

    assert [point.decision.newly_halted for point in replayed.points] == [False, False, False, True, False]
    assert replayed.points[1].decision.critical_pending


def test_a_rule_on_the_floating_loss_of_a_strategy_cannot_be_replayed_and_is_named():
    scoped = Rule(
        id="strategy-a",
        metric=Metric.FLOATING,
        scope=Scope(kind=ScopeKind.STRATEGY, magics=frozenset({7})),
        steps=(Step(Tier.CLOSE_SCOPE, Threshold(amount=D(100))),),
    )
    whole = Rule(id="floating", metric=Metric.FLOATING, steps=(Step(Tier.HALT, Threshold(amount=D(100))),))

    with pytest.raises(
        UnreplayableRule, match="rule 'strategy-a': measures the floating P&L of its strategy scope"
    ):
        replay(RuleSet(rules=(whole, scoped)), series("10000"))
    assert replay(RuleSet(rules=(whole,)), series("10000", "9850")).points[-1].decision.newly_halted
