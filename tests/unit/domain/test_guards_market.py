from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.domain.guards import (
    GuardDecision,
    GuardLevel,
    ImpossibleQuote,
    InvalidGuardSettings,
    MarketCondition,
    MarketReason,
    MarketSettings,
    SymbolMarketState,
    evaluate_market,
)
from tradeguard.domain.model import Quote

D = Decimal
DEFAULTS = MarketSettings()


def quote(symbol, bid, ask):
    return Quote(symbol=symbol, bid=D(bid), ask=D(ask))


def around(symbol, mid, half_spread="0.01"):
    """A tight quote centred on `mid`, so only the gap decides its level."""
    return quote(symbol, D(mid) - D(half_spread), D(mid) + D(half_spread))


def only(decision):
    (condition,) = decision.conditions
    return condition


@pytest.fixture
def us500_at_100():
    return {"US500": SymbolMarketState(mid=D("100"))}


@pytest.mark.parametrize(
    ("ask", "expected_level", "expected_spread"),
    [
        ("100.50", GuardLevel.NORMAL, D("0.5")),
        ("100.51", GuardLevel.WARNING, D("0.51")),
        ("100.99", GuardLevel.WARNING, D("0.99")),
        ("101", GuardLevel.CRITICAL, D("1")),
    ],
)
def test_spread_warns_only_above_half_a_percent_and_is_critical_from_one(
    ask, expected_level, expected_spread
):
    condition = only(evaluate_market([quote("US500", "100", ask)], {}, DEFAULTS))

    assert condition.spread_pct == expected_spread
    assert condition.level is expected_level


@pytest.mark.parametrize(
    ("mid", "expected_level", "expected_gap"),
    [
        ("104.99", GuardLevel.NORMAL, D("4.99")),
        ("105", GuardLevel.WARNING, D("5")),
        ("109.99", GuardLevel.WARNING, D("9.99")),
        ("110", GuardLevel.CRITICAL, D("10")),
        ("95", GuardLevel.WARNING, D("5")),
        ("90", GuardLevel.CRITICAL, D("10")),
    ],
)
def test_gap_warns_from_five_percent_and_is_critical_from_ten_in_either_direction(
    us500_at_100, mid, expected_level, expected_gap
):
    condition = only(evaluate_market([around("US500", mid)], us500_at_100, DEFAULTS))

    assert condition.gap_pct == expected_gap
    assert condition.level is expected_level


def test_the_first_quote_of_a_symbol_has_no_gap_to_measure():
    condition = only(evaluate_market([around("XAUUSD", "2350.00")], {}, DEFAULTS))

    assert condition.gap_pct is None
    assert condition.level is GuardLevel.NORMAL
    assert not condition.should_alert


def test_the_worse_of_gap_and_spread_decides_and_both_are_reasons(us500_at_100):
    condition = only(evaluate_market([quote("US500", "105", "106")], us500_at_100, DEFAULTS))

    assert condition.level is GuardLevel.WARNING
    assert condition.reasons == (MarketReason.GAP_WARNING, MarketReason.SPREAD_WARNING)


@pytest.mark.parametrize(
    ("bid", "ask", "expected"),
    [
        ("100", "100.02", None),
        ("106", "106.02", MarketCondition.GAP_UP),
        ("94", "94.02", MarketCondition.GAP_DOWN),
        ("100", "100.60", MarketCondition.LIQUIDITY_CRISIS),
        ("105", "106", MarketCondition.GAP_UP),
        ("94", "95", MarketCondition.LIQUIDITY_CRISIS),
        ("89", "89.50", MarketCondition.GAP_DOWN),
    ],
    ids=[
        "normal",
        "gap-up",
        "gap-down",
        "wide-spread",
        "gap-and-spread-both-warning",
        "critical-spread-over-warning-gap",
        "critical-gap-over-warning-spread",
    ],
)
def test_the_condition_is_what_decided_the_level_and_a_gap_wins_a_tie(us500_at_100, bid, ask, expected):
    condition = only(evaluate_market([quote("US500", bid, ask)], us500_at_100, DEFAULTS))

    assert condition.condition is expected
    assert (condition.bid, condition.ask) == (D(bid), D(ask))


def test_critical_symbols_are_closed_when_auto_close_is_on():
    previous = {
        "EURUSD": SymbolMarketState(mid=D("1.1000")),
        "US500": SymbolMarketState(mid=D("100")),
    }

    decision = evaluate_market(
        [around("EURUSD", "1.1001", "0.0001"), around("US500", "89")], previous, DEFAULTS
    )

    assert decision.symbols_to_close == ("US500",)
    assert decision.level is GuardLevel.CRITICAL


def test_critical_symbols_are_not_closed_when_auto_close_is_off(us500_at_100):
    decision = evaluate_market([around("US500", "89")], us500_at_100, MarketSettings(auto_close=False))

    assert decision.level is GuardLevel.CRITICAL
    assert decision.symbols_to_close == ()


def test_a_symbol_alerts_on_a_level_change_not_while_it_stays_there():
    wide = [quote("GBPJPY", "190.00", "192.00")]

    first = evaluate_market(wide, {}, DEFAULTS)
    again = evaluate_market(wide, first.next_state, DEFAULTS)

    assert only(first).should_alert and first.alerts == first.conditions
    assert not only(again).should_alert and again.alerts == ()
    assert again.symbols_to_close == ("GBPJPY",)


def test_a_symbol_returning_to_normal_alerts_its_recovery():
    previous = {"GBPJPY": SymbolMarketState(mid=D("190.50"), level=GuardLevel.CRITICAL)}

    condition = only(evaluate_market([around("GBPJPY", "190.50")], previous, DEFAULTS))

    assert condition.level is GuardLevel.NORMAL
    assert condition.should_alert
    assert condition.message.startswith("GBPJPY market normal (was critical)")


def test_next_state_records_the_new_mid_and_level_and_keeps_unquoted_symbols(us500_at_100):
    previous = {
        **us500_at_100,
        "XAUUSD": SymbolMarketState(mid=D("2350"), level=GuardLevel.WARNING),
    }

    decision = evaluate_market([quote("US500", "107", "107.10")], previous, DEFAULTS)

    assert decision.next_state == {
        "US500": SymbolMarketState(mid=D("107.05"), level=GuardLevel.WARNING),
        "XAUUSD": SymbolMarketState(mid=D("2350"), level=GuardLevel.WARNING),
    }


def test_no_quotes_is_a_normal_decision_with_nothing_to_close(us500_at_100):
    decision = evaluate_market([], us500_at_100, DEFAULTS)

    assert decision.level is GuardLevel.NORMAL
    assert decision.conditions == ()
    assert decision.next_state == us500_at_100


def test_each_symbol_condition_is_a_guard_decision():
    assert isinstance(only(evaluate_market([around("US500", "100")], {}, DEFAULTS)), GuardDecision)


@pytest.mark.parametrize(
    ("bid", "ask", "problem"),
    [
        ("1.1002", "1.1000", "below bid"),
        ("0", "1.1000", "non-positive"),
        ("-1", "1.1000", "non-positive"),
        ("1.1000", "-1.1000", "non-positive"),
    ],
)
def test_impossible_quotes_are_refused_naming_the_symbol(bid, ask, problem):
    with pytest.raises(ImpossibleQuote, match=problem) as error:
        evaluate_market([around("US500", "100"), quote("EURUSD", bid, ask)], {}, DEFAULTS)

    assert isinstance(error.value, ValueError)
    assert error.value.symbol == "EURUSD"
    assert "EURUSD" in str(error.value)


def test_a_symbol_quoted_twice_in_one_snapshot_is_refused():
    with pytest.raises(ImpossibleQuote, match="more than once"):
        evaluate_market([around("US500", "100"), around("US500", "120")], {}, DEFAULTS)


def test_a_persisted_mid_must_be_positive():
    with pytest.raises(ValueError):
        SymbolMarketState(mid=D(0))


@pytest.mark.parametrize(
    "overrides",
    [
        {"gap_warning_pct": D(0)},
        {"gap_warning_pct": D(10), "gap_critical_pct": D(10)},
        {"spread_warning_pct": D(2), "spread_critical_pct": D(1)},
        {"spread_warning_pct": D(-1)},
        {"gap_warning_pct": 5.0},
    ],
)
def test_settings_that_cannot_work_are_refused(overrides):
    with pytest.raises(InvalidGuardSettings, match=next(iter(overrides))):
        MarketSettings(**overrides)


prices = st.decimals(min_value=D("0.0001"), max_value=D("100000"), places=4)
spreads = st.decimals(min_value=D(0), max_value=D("0.05"), places=4)


@given(bid=prices, narrow=spreads, wide=spreads)
def test_a_wider_spread_never_gives_a_lower_level(bid, narrow, wide):
    narrow, wide = min(narrow, wide), max(narrow, wide)

    narrow_level = only(evaluate_market([quote("X", bid, bid * (1 + narrow))], {}, DEFAULTS)).level
    wide_level = only(evaluate_market([quote("X", bid, bid * (1 + wide))], {}, DEFAULTS)).level

    assert wide_level >= narrow_level


@given(mids=st.lists(st.decimals(min_value=D(80), max_value=D(120), places=2), min_size=1, max_size=30))
def test_alerts_fire_exactly_on_level_changes_of_a_symbol(mids):
    state, levels, alerts = {}, [GuardLevel.NORMAL], 0
    for mid in mids:
        decision = evaluate_market([around("US500", mid)], state, DEFAULTS)
        state = decision.next_state
        levels.append(only(decision).level)
        alerts += len(decision.alerts)

    assert alerts == sum(1 for before, after in itertools.pairwise(levels) if before is not after)


def test_a_message_names_the_level_what_it_was_and_every_finding_gap_first(us500_at_100):
    both = only(evaluate_market([quote("US500", "111", "113")], us500_at_100, DEFAULTS))
    calm = only(
        evaluate_market([around("US500", "100.5")], {"US500": SymbolMarketState(mid=D("100"))}, DEFAULTS)
    )
    first = only(evaluate_market([around("US500", "100")], {}, DEFAULTS))

    assert both.message == (
        "US500 market critical (was normal): gap 12.00% from previous mid 100; spread 1.80%"
    )
    assert calm.message == "US500 market normal: mid 100.50, spread 0.02%"
    assert first.message == "US500 market normal: mid 100.00, spread 0.02%"
