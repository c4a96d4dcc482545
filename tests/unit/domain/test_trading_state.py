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


@pytest.mark.parametrize(("reason", "since"), [("a reason", None), (None, HALTED_AT)])
def test_an_active_state_with_a_halt_reason_or_time_is_refused(reason, since):
    with pytest.raises(ValueError):
        TradingState(TradingStatus.ACTIVE, reason, since)


def test_a_halted_row_stored_without_reason_or_time_reads_as_halted_and_stays_latched():
    unknown = TradingState(TradingStatus.HALTED)

    assert not unknown.trading_allowed
    assert unknown.halt("drawdown guard critical", since=HALTED_AT) == unknown
