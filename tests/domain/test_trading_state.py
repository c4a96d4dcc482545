from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradeguard.domain.trading import TradingState, TradingStatus

HALTED_AT = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)


def test_an_active_account_may_trade_and_has_no_halt_reason_or_time():
    active = TradingState.active()

    assert active.status is TradingStatus.ACTIVE
    assert active.trading_allowed and not active.halted
    assert (active.reason, active.since) == (None, None)


def test_halting_records_the_reason_and_since_when():
    halted = TradingState.active().halt("drawdown guard critical", since=HALTED_AT)

    assert halted.status is TradingStatus.HALTED
    assert not halted.trading_allowed
    assert (halted.reason, halted.since) == ("drawdown guard critical", HALTED_AT)


def test_a_halt_latches_keeping_the_first_reason_and_time():
    first = TradingState.active().halt("drawdown guard critical", since=HALTED_AT)

    again = first.halt("another guard", since=HALTED_AT + timedelta(minutes=1))

    assert again == first


def test_rearming_makes_a_halted_account_active_again():
    halted = TradingState.active().halt("drawdown guard critical", since=HALTED_AT)

    assert halted.rearm() == TradingState.active()


@pytest.mark.parametrize(
    ("status", "reason", "since"),
    [
        (TradingStatus.ACTIVE, "a reason", None),
        (TradingStatus.ACTIVE, None, HALTED_AT),
        (TradingStatus.HALTED, None, HALTED_AT),
        (TradingStatus.HALTED, "a reason", None),
    ],
)
def test_a_state_contradicting_itself_is_refused(status, reason, since):
    with pytest.raises(ValueError):
        TradingState(status, reason, since)
