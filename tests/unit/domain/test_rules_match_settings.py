from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.domain.guards.drawdown import (
    DrawdownSettings,
    _message,
    evaluate_drawdown,
    rearm,
    rules_from_settings,
)
from tradeguard.domain.guards.rule_evaluation import evaluate_rules, rearm_rules
from tradeguard.domain.model import BrokerPosition, Side

D = Decimal
START = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
POSITION = BrokerPosition("1", "EURUSD", Side.BUY, D("1"), D("1.1"), D("1.1"), START, D(0))

money = st.decimals(min_value=D("50"), max_value=D("20000"), places=2)
percent = st.decimals(min_value=D("0.5"), max_value=D("60"), places=2)


@st.composite
def drawdown_settings(draw):
    warning = draw(percent)
    critical = draw(st.decimals(min_value=warning + D("0.01"), max_value=D("100"), places=2))
    return DrawdownSettings(
        warning_pct=warning,
        critical_pct=critical,
        min_equity=draw(st.sampled_from([D(0), D(100), D(5000)])),
        daily_loss_limit_pct=draw(st.none() | percent),
        daily_loss_anchor=draw(st.sampled_from(["balance", "equity"])),
        daily_reset_time=draw(st.sampled_from([time(0, 0), time(17, 0), time(2, 30)])),
        daily_reset_tz=draw(st.sampled_from(["UTC", "Europe/Prague", "America/New_York"])),
        critical_confirmations=draw(st.integers(1, 3)),
        auto_close=draw(st.booleans()),
    )


steps = st.lists(
    st.tuples(
        money,
        money,
        st.integers(0, 20 * 3600),
        st.booleans(),
        st.sampled_from([None, None, None, False, True]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(drawdown_settings(), steps)
def test_the_settings_rule_set_judges_every_snapshot_as_the_settings_did(config, sequence):
    rule_set = rules_from_settings(config)
    old_state = None
    new_state = None
    halted = False
    now = START
    for equity, balance, seconds, holding, rearming in sequence:
        now += timedelta(seconds=seconds)
        positions = (POSITION,) if holding else ()
        old = evaluate_drawdown(old_state, equity=equity, balance=balance, now=now, settings=config)
        new = evaluate_rules(
            rule_set, new_state, equity=equity, balance=balance, now=now, halted=halted, positions=positions
        )
        assert new.level is old.level
        assert new.previous_level is old.previous_level
        assert new.peak_equity == old.peak_equity
        assert new.drawdown_pct == old.drawdown_pct
        assert new.consecutive == old.consecutive_critical
        assert new.critical_pending == old.critical_pending
        assert new.halted == old.halted
        assert new.newly_halted == old.newly_halted
        assert bool(new.to_close) == (old.positions_should_close and holding)
        message = _message(
            new.level,
            new.previous_level,
            equity=equity,
            peak=new.peak_equity,
            drawdown=new.drawdown_pct,
            details=list(new.details),
            pending=None,
            halted=new.halted,
        )
        assert message == old.message
        old_state, new_state, halted = old.next_state, new.next_state, new.halted
        if rearming is not None and halted:
            old_state = rearm(old_state, reset_peak_to=equity if rearming else None)
            new_state = rearm_rules(new_state, reset_peak_to=equity if rearming else None)
            halted = False
