"""The rule engine's laws, over any sequence of snapshots, and its rules checked one by one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.domain.guards.levels import GuardLevel
from tradeguard.domain.guards.rule_evaluation import RulesDecision, RuleSetState, evaluate_rules, rearm_rules
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
from tradeguard.domain.model import BrokerPosition, Side
from tradeguard.domain.periods import Period, PeriodKind, period_start

D = Decimal
INITIAL = D(100_000)
NO_SWAP = D(0)
START = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
# Zones whose daylight-saving changes never skip or repeat the reset times below.
ZONES = ("Europe/Prague", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Etc/GMT-3", "UTC")
RESETS = (time(0, 0), time(17, 0), time(22, 0))
PERIOD_REFERENCES = (
    Reference.PERIOD_START_BALANCE,
    Reference.PERIOD_START_EQUITY,
    Reference.PERIOD_START_HIGHER,
    Reference.TRAILING_HIGH_BALANCE,
)


def position(
    ticket: str, profit: Decimal, magic: int | None = None, swap: Decimal = NO_SWAP
) -> BrokerPosition:
    return BrokerPosition(
        ticket, "EURUSD", Side.BUY, D(1), D("1.1"), D("1.1"), START, profit, swap=swap, magic=magic
    )


def halting(amount: Decimal, **fields) -> Rule:
    """A rule that halts once the equity is `amount` below the initial balance."""
    return Rule(
        id="loss",
        metric=Metric.EQUITY,
        reference=Reference.INITIAL_BALANCE,
        steps=(Step(Tier.HALT, Threshold(amount=amount)),),
        **fields,
    )


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    balance: Decimal
    positions: tuple[BrokerPosition, ...] = ()

    @property
    def equity(self) -> Decimal:
        return self.balance + sum((p.net_profit for p in self.positions), D(0))


def run(rule_set: RuleSet, snapshots: Sequence[Snapshot], matched_signals=None) -> list[RulesDecision]:
    """Judge the snapshots in turn, the account's halt carried from one to the next."""
    state: RuleSetState | None = None
    halted = False
    decisions = []
    for snap in snapshots:
        decision = evaluate_rules(
            rule_set,
            state,
            equity=snap.equity,
            balance=snap.balance,
            now=snap.at,
            halted=halted,
            positions=snap.positions,
            matched_signals=matched_signals or {},
        )
        state, halted = decision.next_state, decision.halted
        decisions.append(decision)
    return decisions


def once(rule: Rule, snap: Snapshot, matched_signals=None):
    decision = run(RuleSet(rules=(rule,), initial_balance=INITIAL), [snap], matched_signals)[0]
    return decision, decision.results[0]


money = st.decimals(min_value=D("80000"), max_value=D("130000"), places=2)
percents = st.decimals(min_value=D("0.5"), max_value=D("15"), places=2)
zones = st.sampled_from(ZONES)
day_periods = st.builds(Period, kind=st.just(PeriodKind.DAY), time_zone=zones, reset=st.sampled_from(RESETS))


@st.composite
def snapshots(draw):
    """Snapshots moving forward in time, some holding positions of a strategy (magic 1) and by hand."""
    at = START + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
    sequence = []
    for _ in range(draw(st.integers(1, 30))):
        at += timedelta(minutes=draw(st.integers(1, 20 * 60)))
        held = draw(
            st.lists(
                st.builds(
                    position,
                    ticket=st.sampled_from(["1", "2", "3"]),
                    profit=st.decimals(min_value=D(-15000), max_value=D(8000), places=2),
                    magic=st.sampled_from([None, 0, 1]),
                ),
                max_size=3,
                unique_by=lambda p: p.ticket,
            )
        )
        sequence.append(Snapshot(at, draw(money), tuple(held)))
    return sequence


@st.composite
def rules(draw, rule_id: str, *, shadow: bool = False) -> Rule:
    """Any rule the engine accepts: each reference, with or without a period, a buffer, a scope, a
    ladder of an alert and an acting step, each way of resuming."""
    reference = draw(st.sampled_from(list(Reference)))
    period = draw(day_periods) if reference in PERIOD_REFERENCES or draw(st.booleans()) else None
    scoped = draw(st.booleans())
    scope = Scope(ScopeKind.STRATEGY, magics=frozenset({1})) if scoped else Scope()
    metric = Metric.FLOATING if scoped else draw(st.sampled_from([Metric.EQUITY, Metric.BALANCE]))
    acting = Tier.CLOSE_SCOPE if scoped else draw(st.sampled_from([Tier.HALT, Tier.CLOSE_ALL]))
    basis = draw(st.sampled_from(list(Basis)))
    first = draw(percents)
    if draw(st.booleans()):
        second = first + draw(percents)
        floor = draw(st.none() | st.just(D(70_000)))
        steps = (
            Step(Tier.ALERT, Threshold(percent=first, percent_of=basis)),
            Step(acting, Threshold(percent=second, percent_of=basis, floor=floor)),
        )
    else:
        steps = (Step(acting, Threshold(percent=first, percent_of=basis)),)
    resumes = [Resume(), Resume(ResumeMode.COOL_DOWN, below=D("0.5"), after=timedelta(hours=1))]
    if period is not None:
        resumes.append(Resume(ResumeMode.NEXT_PERIOD))
    return Rule(
        id=rule_id,
        metric=metric,
        reference=reference,
        period=period,
        steps=steps,
        buffer=draw(st.none() | st.sampled_from([D("0.8"), D("0.9"), D(1)])),
        scope=scope,
        resume=draw(st.sampled_from(resumes)),
        lock_at_initial=reference is Reference.TRAILING_HIGH_BALANCE and draw(st.booleans()),
        shadow=shadow,
    )


@settings(max_examples=200, deadline=None)
@given(day_periods, st.booleans(), snapshots())
def test_a_trailing_reference_never_decreases(period, locked, sequence):
    rule = Rule(
        id="trailing",
        metric=Metric.EQUITY,
        reference=Reference.TRAILING_HIGH_BALANCE,
        period=period,
        steps=(Step(Tier.CLOSE_ALL, Threshold(percent=D(10), percent_of=Basis.INITIAL_BALANCE)),),
        lock_at_initial=locked,
    )
    decisions = run(RuleSet(rules=(rule,), initial_balance=INITIAL), sequence)
    references = [decision.results[0].reference for decision in decisions]
    assert references[0] >= INITIAL
    assert all(later >= earlier for earlier, later in zip(references, references[1:], strict=False))
    equity_limits = [d.results[0].value - d.results[0].standings[0].headroom for d in decisions]
    assert all(later >= earlier for earlier, later in zip(equity_limits, equity_limits[1:], strict=False))
    if locked:
        assert all(limit <= INITIAL for limit in equity_limits)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1_000), min_size=1, max_size=3, unique=True).flatmap(
        lambda ids: st.tuples(*(rules(f"live-{i}") for i in ids))
    ),
    rules("shadow", shadow=True),
    st.integers(1, 2),
    snapshots(),
    st.data(),
)
def test_a_rule_in_shadow_changes_nothing_the_account_does(live, shadow, confirmations, sequence, data):
    at = data.draw(st.integers(0, len(live)))
    with_shadow = RuleSet(
        rules=(*live[:at], shadow, *live[at:]), initial_balance=INITIAL, confirmations=confirmations
    )
    without = RuleSet(rules=live, initial_balance=INITIAL, confirmations=confirmations)
    for judged, alone in zip(run(with_shadow, sequence), run(without, sequence), strict=True):
        assert judged.to_close == alone.to_close
        assert judged.halted == alone.halted
        assert judged.newly_halted == alone.newly_halted
        assert judged.resumed == alone.resumed
        assert judged.level is alone.level
        assert judged.consecutive == alone.consecutive
        assert judged.critical_pending == alone.critical_pending
        assert judged.details == alone.details


def trading_day(period: Period, at: datetime):
    """The local date a day that resets at `period.reset` in its zone has begun on."""
    local = at.astimezone(period.zone)
    return local.date() if local.time() >= period.reset else local.date() - timedelta(days=1)


@settings(max_examples=200, deadline=None)
@given(
    day_periods,
    st.sampled_from(PERIOD_REFERENCES),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
    st.integers(24, 24 * 10),
)
def test_a_rules_day_begins_exactly_once_per_local_day(period, reference, first, hours):
    rule = Rule(
        id="daily",
        metric=Metric.EQUITY,
        reference=reference,
        period=period,
        steps=(Step(Tier.HALT, Threshold(percent=D(5))),),
    )
    hourly = [Snapshot(first + timedelta(hours=hour), INITIAL) for hour in range(hours)]
    starts = [
        decision.next_state.of("daily").period_start for decision in run(RuleSet(rules=(rule,)), hourly)
    ]
    days = [trading_day(period, snap.at) for snap in hourly]
    for index in range(1, len(hourly)):
        assert (starts[index] != starts[index - 1]) == (days[index] != days[index - 1])
    changes = sum(1 for index in range(1, len(starts)) if starts[index] != starts[index - 1])
    assert len(set(starts)) == changes + 1 == len(set(days))


LIMIT = D(1000)
moves = st.lists(
    st.tuples(st.decimals(min_value=-2 * LIMIT, max_value=LIMIT, places=0), st.integers(1, 16 * 60)),
    min_size=1,
    max_size=40,
)


def walk(steps: list[tuple[Decimal, int]]) -> list[Snapshot]:
    """Snapshots of an account without positions: each step its gain on the initial balance and the
    minutes since the snapshot before."""
    at = START
    sequence = []
    for gain, minutes in steps:
        at += timedelta(minutes=minutes)
        sequence.append(Snapshot(at, INITIAL + gain))
    return sequence


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([D(0), D("0.5"), D("0.9")]),
    st.sampled_from([timedelta(0), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=9)]),
    moves,
)
def test_a_cool_down_resumes_only_once_the_loss_stayed_under_its_level_for_its_time(below, after, moves):
    rule = halting(LIMIT, resume=Resume(ResumeMode.COOL_DOWN, below=below, after=after))
    sequence = walk(moves)
    halted = False
    calm_since: datetime | None = None
    for snap, decision in zip(
        sequence, run(RuleSet(rules=(rule,), initial_balance=INITIAL), sequence), strict=True
    ):
        loss = INITIAL - snap.equity
        calm = loss < below * LIMIT
        calm_since = (calm_since or snap.at) if halted and calm else None
        expected = halted and loss < LIMIT and calm_since is not None and snap.at - calm_since >= after
        assert decision.resumed == expected
        assert decision.halted == (loss >= LIMIT or (halted and not expected))
        halted = decision.halted
        if expected:
            calm_since = None


@settings(max_examples=300, deadline=None)
@given(day_periods, moves)
def test_a_next_period_resume_comes_with_the_first_snapshot_of_a_period_after_the_last_breach(period, moves):
    rule = halting(LIMIT, period=period, resume=Resume(ResumeMode.NEXT_PERIOD))
    sequence = walk(moves)
    halted = False
    last_breach: datetime | None = None
    for snap, decision in zip(
        sequence, run(RuleSet(rules=(rule,), initial_balance=INITIAL), sequence), strict=True
    ):
        breach = INITIAL - snap.equity >= LIMIT
        expected = (
            halted
            and not breach
            and last_breach is not None
            and period_start(period, snap.at) > period_start(period, last_breach)
        )
        assert decision.resumed == expected
        if breach:
            last_breach = snap.at
        halted = decision.halted


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1_000), min_size=1, max_size=3, unique=True).flatmap(
        lambda ids: st.tuples(*(rules(f"rule-{i}") for i in ids))
    ),
    snapshots(),
    st.none() | money,
)
def test_rearming_clears_every_rules_step_and_keeps_its_references(live, sequence, new_peak):
    rule_set = RuleSet(rules=live, initial_balance=INITIAL)
    state = run(rule_set, sequence)[-1].next_state
    rearmed = rearm_rules(state, reset_peak_to=new_peak)
    assert rearmed.level is GuardLevel.NORMAL
    assert rearmed.consecutive == 0
    assert rearmed.peak_equity == (state.peak_equity if new_peak is None else new_peak)
    for rule in live:
        before, after = state.of(rule.id), rearmed.of(rule.id)
        assert (after.step, after.consecutive, after.tripped_at, after.calm_since) == (None, 0, None, None)
        assert (after.period_start, after.start_balance, after.start_equity, after.trailing_high) == (
            before.period_start,
            before.start_balance,
            before.start_equity,
            before.trailing_high,
        )
    last = sequence[-1]
    again = evaluate_rules(
        rule_set,
        rearmed,
        equity=last.equity,
        balance=last.balance,
        now=last.at,
        halted=False,
        positions=last.positions,
    )
    for result in again.results:
        assert result.previous_step is None
        assert result.changed == (result.step is not None)


def test_rearming_refuses_a_peak_that_is_not_positive():
    with pytest.raises(ValueError, match="reset_peak_to"):
        rearm_rules(RuleSetState(peak_equity=INITIAL), reset_peak_to=D(0))


@pytest.mark.parametrize(
    ("steps", "field", "problem"),
    [
        (
            (Step(Tier.ALERT, Threshold(percent=D(6))), Step(Tier.HALT, Threshold(percent=D(5)))),
            "steps[0].threshold.percent",
            "must be below the next step's percent (5)",
        ),
        (
            (Step(Tier.ALERT, Threshold(amount=D(500))), Step(Tier.HALT, Threshold(amount=D(500)))),
            "steps[0].threshold.amount",
            "must be below the next step's amount (500)",
        ),
        (
            (Step(Tier.ALERT, Threshold(floor=D(90_000))), Step(Tier.HALT, Threshold(floor=D(95_000)))),
            "steps[0].threshold.floor",
            "must be above the next step's floor (95000)",
        ),
        (
            (Step(Tier.HALT, Threshold(percent=D(5))), Step(Tier.ALERT, Threshold(percent=D(6)))),
            "steps[1].tier",
            "alert is milder than the step before it (halt)",
        ),
        (
            (
                Step(Tier.ALERT, Threshold(percent=D(4))),
                Step(Tier.HALT, Threshold(percent=D(5), percent_of=Basis.INITIAL_BALANCE)),
            ),
            "steps[1].threshold.percent_of",
            "steps must share what their percent is of",
        ),
        ((), "steps", "a rule needs at least one step"),
        (
            (Step(Tier.HALT, Threshold()),),
            "steps[0].threshold",
            "a threshold needs an amount, a percent or a floor",
        ),
        (
            (Step(Tier.HALT, Threshold(percent=5.0)),),
            "steps[0].threshold.percent",
            "must be a Decimal, not a float",
        ),
    ],
)
def test_a_ladder_that_does_not_climb_is_refused_naming_the_step(steps, field, problem):
    with pytest.raises(InvalidRule) as refused:
        Rule(id="drawdown", metric=Metric.EQUITY, steps=steps)
    assert (refused.value.rule, refused.value.field, refused.value.problem) == ("drawdown", field, problem)
    assert str(refused.value) == f"rule 'drawdown': {field}: {problem}"


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"buffer": 0.9}, "buffer", "must be a Decimal, not a float"),
        (
            {"resume": Resume(ResumeMode.COOL_DOWN, below=0.5)},
            "resume.below",
            "must be a Decimal, not a float",
        ),
        (
            {"resume": Resume(ResumeMode.OWNER, after=timedelta(hours=1))},
            "resume.after",
            "only a cool_down takes one, not owner",
        ),
        (
            {
                "steps": (
                    Step(Tier.ALERT, Threshold(percent=D(5))),
                    Step(Tier.HALT, Threshold(floor=D(90_000))),
                ),
                "resume": Resume(ResumeMode.COOL_DOWN, below=D("0.5")),
            },
            "steps[1].threshold",
            "a cool-down needs the first acting step to limit the loss (an amount or a percent)",
        ),
    ],
)
def test_a_rule_that_could_not_work_is_refused_naming_the_field(fields, field, problem):
    with pytest.raises(InvalidRule) as refused:
        Rule(
            **{
                "id": "loss",
                "metric": Metric.EQUITY,
                "steps": (Step(Tier.HALT, Threshold(percent=D(5))),),
                **fields,
            }
        )
    assert (refused.value.field, refused.value.problem) == (field, problem)


def test_a_rule_set_refuses_an_initial_balance_that_is_not_a_decimal():
    with pytest.raises(InvalidRule) as refused:
        RuleSet(rules=(halting(LIMIT),), initial_balance=100_000.0)
    assert refused.value.field == "initial_balance"


# One account's positions: a strategy's (magic 7), one matched to signal "breakout" although opened
# with magic 0, one opened by hand, and another strategy's (magic 9). Each loses 150.
HELD = (
    position("strategy", D(-150), magic=7),
    position("signalled", D(-150), magic=0),
    position("by-hand", D(-150), magic=0),
    position("other", D(-150), magic=9),
)
SIGNALS = {"signalled": "breakout"}


@pytest.mark.parametrize(
    ("scope", "closed"),
    [
        (Scope(ScopeKind.STRATEGY, magics=frozenset({7})), ("strategy",)),
        (Scope(ScopeKind.STRATEGY, signals=frozenset({"breakout"})), ("signalled",)),
        (
            Scope(ScopeKind.STRATEGY, magics=frozenset({7, 9}), signals=frozenset({"breakout"})),
            ("strategy", "signalled", "other"),
        ),
        (Scope(ScopeKind.MANUAL), ("by-hand",)),
    ],
)
def test_close_scope_closes_only_the_positions_of_its_scope(scope, closed):
    rule = Rule(
        id="scoped",
        metric=Metric.FLOATING,
        scope=scope,
        steps=(Step(Tier.CLOSE_SCOPE, Threshold(amount=D(100))),),
    )
    decision, result = once(rule, Snapshot(START, INITIAL, HELD), SIGNALS)
    assert result.loss == 150 * len(closed)
    assert decision.to_close == closed
    assert decision.halted


def test_a_scope_under_its_limit_closes_nothing_whatever_the_rest_of_the_account_loses():
    rule = Rule(
        id="scoped",
        metric=Metric.FLOATING,
        scope=Scope(ScopeKind.MANUAL),
        steps=(Step(Tier.CLOSE_SCOPE, Threshold(amount=D(200))),),
    )
    decision, result = once(rule, Snapshot(START, INITIAL, HELD), SIGNALS)
    assert result.reached is None
    assert decision.to_close == ()
    assert not decision.halted


def test_a_scope_needs_what_it_names():
    with pytest.raises(InvalidRule) as refused:
        Rule(
            id="scoped",
            metric=Metric.FLOATING,
            scope=Scope(ScopeKind.STRATEGY),
            steps=(Step(Tier.CLOSE_SCOPE, Threshold(amount=D(1))),),
        )
    assert refused.value.field == "scope"
    with pytest.raises(InvalidRule) as refused:
        Rule(id="everything", metric=Metric.EQUITY, steps=(Step(Tier.CLOSE_SCOPE, Threshold(amount=D(1))),))
    assert refused.value.field == "steps[0].tier"


def test_a_buffer_acts_at_its_fraction_of_the_limit():
    # A 5 % limit with a buffer of 0.9 acts at 4.5 %: 4,500 on 100,000.
    rule = Rule(
        id="daily",
        metric=Metric.EQUITY,
        reference=Reference.INITIAL_BALANCE,
        steps=(Step(Tier.CLOSE_ALL, Threshold(percent=D(5))),),
        buffer=D("0.9"),
    )
    held = (position("1", D("-4499.99")),)
    _, short = once(rule, Snapshot(START, INITIAL, held))
    assert short.standings[0].limit == D(4500)
    assert short.standings[0].headroom == D("0.01")
    assert short.reached is None
    decision, reached = once(rule, Snapshot(START, INITIAL, (position("1", D(-4500)),)))
    assert reached.reached == 0
    assert reached.standings[0].headroom == 0
    assert decision.to_close == ("1",)
    assert reached.detail == "daily 4.50% >= close_all 4.5%"


def test_a_floating_rule_measures_its_scopes_open_results_from_the_balance():
    rule = Rule(
        id="strategy",
        metric=Metric.FLOATING,
        scope=Scope(ScopeKind.STRATEGY, magics=frozenset({7})),
        steps=(Step(Tier.ALERT, Threshold(percent=D(1))), Step(Tier.CLOSE_SCOPE, Threshold(percent=D(2)))),
    )
    held = (
        position("a", D(-700), magic=7, swap=D(-50)),
        position("b", D(-300), magic=7),
        position("c", D(-5000), magic=9),
    )
    balance = D(95_000)
    decision, result = once(rule, Snapshot(START, balance, held))
    assert result.reference == balance
    assert result.value == balance - D(1050)
    assert result.loss == D(1050)
    # Percents are of the balance, the floating rule's reference: 1 % is 950, 2 % is 1,900.
    assert result.loss_pct == D("1.1053")
    assert [s.limit for s in result.standings] == [D(950), D(1900)]
    assert result.step == 0
    assert decision.level is GuardLevel.WARNING
    assert decision.to_close == ()


@pytest.mark.parametrize(("locked", "equity_limit"), [(True, D(100_000)), (False, D(105_000))])
def test_a_locked_trailing_limit_stops_rising_at_the_initial_balance(locked, equity_limit):
    rule = Rule(
        id="trailing",
        metric=Metric.EQUITY,
        reference=Reference.TRAILING_HIGH_BALANCE,
        period=Period(PeriodKind.DAY, "UTC"),
        steps=(Step(Tier.CLOSE_ALL, Threshold(percent=D(10), percent_of=Basis.INITIAL_BALANCE)),),
        lock_at_initial=locked,
    )
    day = datetime(2026, 5, 4, 12, tzinfo=UTC)
    sequence = [
        Snapshot(day, INITIAL),
        Snapshot(day + timedelta(days=1), D(105_000)),
        Snapshot(day + timedelta(days=2), D(115_000)),
        Snapshot(day + timedelta(days=2, hours=1), D(115_000), (position("1", D(-14_000)),)),
    ]
    decisions = run(RuleSet(rules=(rule,), initial_balance=INITIAL), sequence)
    limits = [d.results[0].value - d.results[0].standings[0].headroom for d in decisions]
    assert limits == [D(90_000), D(95_000), equity_limit, equity_limit]
    last = decisions[-1].results[0]
    assert (last.reached is not None) == (not locked)
    # What the result reports agrees with the step it stands at.
    assert (last.loss_pct >= 10) == (last.reached is not None)
