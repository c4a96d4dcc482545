"""The drawdown settings as a rule set (`rules_from_settings`), judged by `evaluate_rules`: the
behaviour accounts without rules of their own have always had."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.guards import (
    DailyLossAnchor,
    DrawdownSettings,
    GuardLevel,
    InvalidGuardSettings,
    rules_from_settings,
    worst,
)
from tradeguard.domain.guards.drawdown import decision_message
from tradeguard.domain.guards.rule_evaluation import RulesDecision, RuleSetState, evaluate_rules, rearm_rules
from tradeguard.domain.model import BrokerPosition, Side

D = Decimal
NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
DEFAULTS = DrawdownSettings()
HELD = BrokerPosition("7", "EURUSD", Side.BUY, D(1), D("1.1"), D("1.1"), NOW, D(0))


@dataclass(frozen=True)
class Account:
    """What the shell keeps between snapshots: the guard's state and whether trading is halted."""

    state: RuleSetState | None = None
    halted: bool = False


def after(decision: RulesDecision) -> Account:
    return Account(decision.next_state, decision.halted)


def evaluate(account, equity, *, balance=None, now=NOW, settings=DEFAULTS) -> RulesDecision:
    account = account if isinstance(account, Account) else Account(account)
    return evaluate_rules(
        rules_from_settings(settings),
        account.state,
        equity=D(equity),
        balance=D(equity) if balance is None else D(balance),
        now=now,
        halted=account.halted,
        positions=(HELD,),
    )


def reached(decision: RulesDecision) -> tuple[str, ...]:
    return tuple(result.rule.id for result in decision.live if result.reached is not None)


def daily_loss_pct(decision: RulesDecision) -> Decimal | None:
    daily = [result for result in decision.live if result.rule.id == "daily_loss"]
    return daily[0].loss_pct if daily else None


def peaked(equity) -> RuleSetState:
    return RuleSetState(peak_equity=D(equity))


@pytest.fixture
def at_peak() -> Account:
    """An account first seen with 10,000 of equity: the high-water mark."""
    return after(evaluate(None, "10000"))


def test_levels_order_by_severity_not_alphabetically():
    assert GuardLevel.NORMAL < GuardLevel.WARNING < GuardLevel.CRITICAL
    assert worst([GuardLevel.WARNING, GuardLevel.CRITICAL, GuardLevel.NORMAL]) is GuardLevel.CRITICAL
    assert worst([]) is GuardLevel.NORMAL
    assert GuardLevel.CRITICAL == "critical"


def test_first_snapshot_sets_the_peak_and_is_normal_without_alert():
    decision = evaluate(None, "10000")

    assert decision.level is GuardLevel.NORMAL
    assert decision.peak_equity == D("10000")
    assert decision.drawdown_pct == 0
    assert not decision.level_changed
    assert decision.next_state.peak_equity == D("10000")
    assert not decision.halted


@pytest.mark.parametrize(
    ("equity", "expected_level", "expected_pct"),
    [
        ("8501", GuardLevel.NORMAL, D("14.99")),
        ("8500", GuardLevel.WARNING, D("15")),
        ("8001", GuardLevel.WARNING, D("19.99")),
        ("8000", GuardLevel.CRITICAL, D("20")),
    ],
)
def test_drawdown_thresholds_are_inclusive(at_peak, equity, expected_level, expected_pct):
    decision = evaluate(at_peak, equity)

    assert decision.drawdown_pct == expected_pct
    assert decision.level is expected_level


def test_drawdown_below_warning_by_less_than_the_reported_precision_is_normal(at_peak):
    decision = evaluate(at_peak, "8500.01")

    assert decision.drawdown_pct == D("14.9999")
    assert decision.level is GuardLevel.NORMAL


def test_equity_a_cent_below_minimum_is_critical_without_any_drawdown():
    state = peaked("99.99")

    decision = evaluate(state, "99.99")

    assert decision.drawdown_pct == 0
    assert decision.level is GuardLevel.CRITICAL
    assert reached(decision) == ("min_equity",)


def test_equity_exactly_at_minimum_is_not_critical():
    decision = evaluate(peaked("100"), "100")

    assert decision.level is GuardLevel.NORMAL
    assert reached(decision) == ()


def test_every_critical_condition_is_named_in_reasons_and_message(at_peak):
    settings = DrawdownSettings(min_equity=D("9000"), daily_loss_limit_pct=D(5))

    decision = evaluate(at_peak, "7000", balance="10000", settings=settings)

    assert reached(decision) == ("drawdown", "min_equity", "daily_loss")
    assert "drawdown 30.00% >= critical 20%" in decision_message(decision)
    assert "below minimum 9000" in decision_message(decision)
    assert "daily loss 30.00% >= limit 5%" in decision_message(decision)


def test_new_peak_raises_the_high_water_mark_without_alert(at_peak):
    decision = evaluate(at_peak, "12000")

    assert decision.peak_equity == D("12000")
    assert decision.next_state.peak_equity == D("12000")
    assert not decision.level_changed


def test_drawdown_is_measured_from_the_persisted_peak_not_the_last_equity(at_peak):
    dipped = after(evaluate(at_peak, "9000"))

    decision = evaluate(dipped, "8500")

    assert decision.peak_equity == D("10000")
    assert decision.drawdown_pct == D("15")


def test_a_level_alerts_once_not_on_every_snapshot_that_repeats_it(at_peak):
    first = evaluate(at_peak, "8400")
    second = evaluate(after(first), "8300")

    assert first.level_changed and first.level is GuardLevel.WARNING
    assert not second.level_changed and second.level is GuardLevel.WARNING


def test_recovery_to_normal_alerts_and_is_recorded(at_peak):
    warned = after(evaluate(at_peak, "8400"))

    recovered = evaluate(warned, "9500")

    assert recovered.level is GuardLevel.NORMAL
    assert recovered.previous_level is GuardLevel.WARNING
    assert recovered.level_changed
    assert recovered.next_state.level is GuardLevel.NORMAL
    assert "(was warning)" in decision_message(recovered)


def test_critical_closes_every_position_on_entering_and_on_every_snapshot_it_lasts(at_peak):
    entering = evaluate(at_peak, "7900")
    staying = evaluate(after(entering), "7800")

    assert entering.to_close == staying.to_close == (HELD.ticket,)


def test_auto_close_off_never_asks_to_close_but_still_halts(at_peak):
    settings = DrawdownSettings(auto_close=False)

    decision = evaluate(at_peak, "7900", settings=settings)

    assert decision.level is GuardLevel.CRITICAL
    assert decision.to_close == ()
    assert decision.halted and decision.newly_halted


def test_critical_latches_the_halt_even_after_equity_recovers(at_peak):
    critical = evaluate(at_peak, "7900")
    recovered = evaluate(after(critical), "10000")

    assert critical.newly_halted and critical.halted
    assert recovered.level is GuardLevel.NORMAL
    assert recovered.halted and not recovered.newly_halted
    assert recovered.halted
    assert "trading halted until re-armed" in decision_message(recovered)


def test_rearm_allows_trading_again(at_peak):
    halted = evaluate(after(evaluate(at_peak, "7900")), "9900").next_state

    decision = evaluate(Account(rearm_rules(halted)), "9900")

    assert not decision.halted
    assert decision.level is GuardLevel.NORMAL
    assert not decision.level_changed


def test_rearm_while_still_in_breach_alerts_closes_and_halts_again(at_peak):
    halted = evaluate(at_peak, "7900").next_state

    decision = evaluate(Account(rearm_rules(halted)), "7900")

    assert decision.level is GuardLevel.CRITICAL
    assert decision.level_changed
    assert decision.to_close
    assert decision.newly_halted


def test_rearm_with_a_new_peak_measures_drawdown_from_it(at_peak):
    halted = evaluate(at_peak, "7900").next_state

    decision = evaluate(Account(rearm_rules(halted, reset_peak_to=D("7900"))), "7800")

    assert decision.peak_equity == D("7900")
    assert decision.level is GuardLevel.NORMAL
    assert not decision.halted


def test_rearm_refuses_a_non_positive_peak(at_peak):
    with pytest.raises(InvalidGuardSettings):
        rearm_rules(at_peak.state, reset_peak_to=D(0))


def test_critical_is_reported_as_warning_until_confirmed_by_consecutive_snapshots(at_peak):
    settings = DrawdownSettings(critical_confirmations=3)

    first = evaluate(at_peak, "7900", settings=settings)
    second = evaluate(after(first), "7900", settings=settings)
    third = evaluate(after(second), "7900", settings=settings)

    assert (first.level, first.consecutive, first.critical_pending) == (
        GuardLevel.WARNING,
        1,
        True,
    )
    assert first.level_changed and not first.to_close and not first.halted
    assert "critical confirmation 1 of 3" in decision_message(first)
    assert (second.level, second.consecutive) == (GuardLevel.WARNING, 2)
    assert not second.level_changed and not second.halted
    assert (third.level, third.consecutive, third.critical_pending) == (
        GuardLevel.CRITICAL,
        3,
        False,
    )
    assert third.level_changed and third.to_close and third.newly_halted


def test_a_snapshot_out_of_critical_restarts_the_confirmation_count(at_peak):
    settings = DrawdownSettings(critical_confirmations=2)

    pending = evaluate(at_peak, "7900", settings=settings)
    interrupted = evaluate(after(pending), "8200", settings=settings)
    pending_again = evaluate(after(interrupted), "7900", settings=settings)

    assert interrupted.consecutive == 0
    assert pending_again.consecutive == 1
    assert pending_again.level is GuardLevel.WARNING
    assert not pending_again.halted


def test_daily_loss_limit_is_off_by_default(at_peak):
    decision = evaluate(at_peak, "9000", balance="10000")

    assert daily_loss_pct(decision) is None
    assert decision.level is GuardLevel.NORMAL


def test_daily_loss_reaching_the_limit_is_critical_from_the_balance_at_day_start():
    settings = DrawdownSettings(daily_loss_limit_pct=D(5))
    morning = after(evaluate(None, "10000", balance="10000", settings=settings))

    just_below = evaluate(morning, "9501", balance="9800", settings=settings)
    at_limit = evaluate(morning, "9500", balance="9800", settings=settings)

    assert daily_loss_pct(just_below) == D("4.99")
    assert just_below.level is GuardLevel.NORMAL
    assert daily_loss_pct(at_limit) == D("5")
    assert at_limit.level is GuardLevel.CRITICAL
    assert reached(at_limit) == ("daily_loss",)


def test_equity_anchor_measures_daily_loss_from_equity_at_day_start():
    settings = DrawdownSettings(daily_loss_limit_pct=D(5), daily_loss_anchor=DailyLossAnchor.EQUITY)
    morning = evaluate(None, "9000", balance="10000", settings=settings)

    later = evaluate(after(morning), "8600", balance="10000", settings=settings)

    assert morning.next_state.of("daily_loss").start_equity == D("9000")
    assert daily_loss_pct(later) == D("4.4444")
    assert later.level is GuardLevel.NORMAL


def test_daily_anchor_resets_at_17_00_new_york_in_winter():
    settings = DrawdownSettings(
        daily_loss_limit_pct=D(5), daily_reset_time=time(17, 0), daily_reset_tz="America/New_York"
    )
    morning = evaluate(None, "10000", now=datetime(2024, 1, 15, 15, 0, tzinfo=UTC), settings=settings)

    before_reset = evaluate(
        after(morning),
        "9500",
        balance="9600",
        now=datetime(2024, 1, 15, 21, 59, 59, tzinfo=UTC),
        settings=settings,
    )
    at_reset = evaluate(
        after(morning),
        "9500",
        balance="9600",
        now=datetime(2024, 1, 15, 22, 0, tzinfo=UTC),
        settings=settings,
    )

    assert morning.next_state.of("daily_loss").period_start == datetime(2024, 1, 14, 22, 0, tzinfo=UTC)
    assert before_reset.level is GuardLevel.CRITICAL
    assert at_reset.next_state.of("daily_loss").period_start == datetime(2024, 1, 15, 22, 0, tzinfo=UTC)
    assert at_reset.next_state.of("daily_loss").start_balance == D("9600")
    assert daily_loss_pct(at_reset) == D("1.0417")
    assert at_reset.level is GuardLevel.NORMAL


def test_daily_reset_follows_new_york_daylight_saving_time():
    settings = DrawdownSettings(
        daily_loss_limit_pct=D(5), daily_reset_time=time(17, 0), daily_reset_tz="America/New_York"
    )
    morning = evaluate(None, "10000", now=datetime(2024, 7, 15, 15, 0, tzinfo=UTC), settings=settings)

    at_reset = evaluate(
        after(morning),
        "9500",
        balance="9600",
        now=datetime(2024, 7, 15, 21, 0, tzinfo=UTC),
        settings=settings,
    )

    assert morning.next_state.of("daily_loss").period_start == datetime(2024, 7, 14, 21, 0, tzinfo=UTC)
    assert at_reset.next_state.of("daily_loss").start_balance == D("9600")
    assert at_reset.level is GuardLevel.NORMAL


def test_a_naive_now_is_refused_because_it_would_depend_on_the_server_zone(at_peak):
    with pytest.raises(ValueError, match="naive"):
        evaluate(
            at_peak,
            "9000",
            now=datetime(2024, 3, 5, 12, 0),
            settings=DrawdownSettings(daily_loss_limit_pct=D(5)),
        )


def test_settings_accept_the_anchor_as_its_string_value():
    assert DrawdownSettings(daily_loss_anchor="equity").daily_loss_anchor is DailyLossAnchor.EQUITY


@pytest.mark.parametrize(
    "overrides",
    [
        {"warning_pct": D(0)},
        {"warning_pct": D(20), "critical_pct": D(20)},
        {"warning_pct": D(25), "critical_pct": D(20)},
        {"critical_pct": D("100.01")},
        {"warning_pct": 15.0},
        {"min_equity": D(-1)},
        {"daily_loss_limit_pct": D(0)},
        {"daily_loss_limit_pct": D(101)},
        {"daily_loss_anchor": "margin"},
        {"daily_reset_time": time(17, 0, tzinfo=UTC)},
        {"daily_reset_tz": "Mars/Olympus_Mons"},
        {"critical_confirmations": 0},
        {"critical_confirmations": True},
    ],
)
def test_settings_that_cannot_work_are_refused_with_a_clear_error(overrides):
    with pytest.raises(InvalidGuardSettings) as error:
        DrawdownSettings(**overrides)

    assert isinstance(error.value, ValueError)
    assert next(iter(overrides)) in str(error.value)


money = st.decimals(min_value=D("100"), max_value=D("1000000"), places=2)
fractions = st.decimals(min_value=D(0), max_value=D(1), places=4)


@given(peak=money, higher=fractions, lower=fractions, daily_limit=st.none() | st.just(D(5)))
def test_level_never_falls_as_drawdown_grows_for_a_fixed_peak(peak, higher, lower, daily_limit):
    higher, lower = max(higher, lower), min(higher, lower)
    settings = DrawdownSettings(daily_loss_limit_pct=daily_limit)
    state = peaked(peak)

    smaller_drawdown = evaluate(state, peak * higher, balance=peak, settings=settings)
    larger_drawdown = evaluate(state, peak * lower, balance=peak, settings=settings)

    assert larger_drawdown.drawdown_pct >= smaller_drawdown.drawdown_pct
    assert larger_drawdown.level >= smaller_drawdown.level


equity_paths = st.lists(
    st.decimals(min_value=D("50"), max_value=D("20000"), places=2), min_size=1, max_size=30
)


def replay(equities, settings, start=NOW):
    """Feed an account one snapshot an hour, as the shell would, persisting each next_state."""
    account, decisions = Account(), []
    for hour, equity in enumerate(equities):
        decision = evaluate(account, equity, now=start + timedelta(hours=hour), settings=settings)
        decisions.append(decision)
        account = after(decision)
    return decisions


@given(equities=equity_paths)
def test_a_new_peak_never_alerts_unless_it_ends_a_warning_or_critical(equities):
    decisions = replay(equities, DrawdownSettings(min_equity=D(0)))

    for before, decision in itertools.pairwise(decisions):
        if decision.equity > before.peak_equity:
            assert decision.level is GuardLevel.NORMAL
            assert decision.level_changed == (before.level is not GuardLevel.NORMAL)


@given(
    equities=equity_paths,
    confirmations=st.integers(min_value=1, max_value=3),
    daily_limit=st.none() | st.just(D(5)),
)
def test_alerts_fire_exactly_on_level_changes(equities, confirmations, daily_limit):
    settings = DrawdownSettings(critical_confirmations=confirmations, daily_loss_limit_pct=daily_limit)

    decisions = replay(equities, settings)

    levels = [GuardLevel.NORMAL] + [decision.level for decision in decisions]
    level_changes = sum(1 for before, after in itertools.pairwise(levels) if before is not after)
    assert sum(1 for decision in decisions if decision.level_changed) == level_changes


@given(equities=equity_paths)
def test_once_halted_an_account_stays_halted_until_rearmed(equities):
    decisions = replay(equities, DEFAULTS)

    halted_flags = [decision.halted for decision in decisions]
    if True in halted_flags:
        assert all(halted_flags[halted_flags.index(True) :])
    assert sum(decision.newly_halted for decision in decisions) <= 1


@given(equities=equity_paths)
def test_the_peak_is_the_highest_equity_seen(equities):
    decisions = replay(equities, DEFAULTS)

    assert [decision.peak_equity for decision in decisions] == [
        max(equities[: index + 1]) for index in range(len(equities))
    ]
