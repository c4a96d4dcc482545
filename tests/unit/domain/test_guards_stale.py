from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeguard.domain.guards import (
    STALE_FEED,
    GuardDecision,
    GuardLevel,
    InvalidGuardSettings,
    evaluate_stale,
)

LAST_SNAPSHOT = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)


def test_a_feed_exactly_at_the_limit_is_not_stale():
    decision = evaluate_stale(LAST_SNAPSHOT, LAST_SNAPSHOT + timedelta(seconds=60), 60)

    assert not decision.is_stale
    assert decision.age_seconds == Decimal(60)
    assert decision.level is GuardLevel.NORMAL


def test_a_feed_a_microsecond_past_the_limit_is_stale_and_critical():
    decision = evaluate_stale(LAST_SNAPSHOT, LAST_SNAPSHOT + timedelta(seconds=60, microseconds=1), 60)

    assert decision.is_stale
    assert decision.age_seconds == Decimal("60.000001")
    assert decision.level is GuardLevel.CRITICAL
    assert decision.reasons == (STALE_FEED,)


def test_going_stale_alerts_once_and_staying_stale_does_not():
    later = LAST_SNAPSHOT + timedelta(minutes=5)

    going = evaluate_stale(LAST_SNAPSHOT, later, 60)
    staying = evaluate_stale(LAST_SNAPSHOT, later + timedelta(minutes=1), 60, was_stale=going.is_stale)

    assert going.should_alert
    assert "no snapshot for 300 s (limit 60 s)" in going.message
    assert not staying.should_alert


def test_a_feed_coming_back_alerts_its_recovery():
    decision = evaluate_stale(LAST_SNAPSHOT, LAST_SNAPSHOT + timedelta(seconds=2), 60, was_stale=True)

    assert not decision.is_stale
    assert decision.previous_level is GuardLevel.CRITICAL
    assert decision.should_alert
    assert decision.message == "feed back: last snapshot 2 s ago"


def test_an_account_that_never_sent_a_snapshot_is_not_stale():
    decision = evaluate_stale(None, LAST_SNAPSHOT, 60)

    assert not decision.is_stale
    assert decision.age_seconds is None
    assert not decision.should_alert


def test_a_snapshot_stamped_ahead_of_our_clock_counts_as_fresh():
    decision = evaluate_stale(LAST_SNAPSHOT, LAST_SNAPSHOT - timedelta(seconds=5), 60)

    assert decision.age_seconds == 0
    assert not decision.is_stale


def test_the_limit_may_be_a_decimal_number_of_seconds():
    decision = evaluate_stale(LAST_SNAPSHOT, LAST_SNAPSHOT + timedelta(seconds=3), Decimal("2.5"))

    assert decision.is_stale


@pytest.mark.parametrize("limit", [0, -1, Decimal(0), 60.0])
def test_a_limit_that_is_not_a_positive_exact_number_is_refused(limit):
    with pytest.raises(InvalidGuardSettings, match="stale_after_seconds"):
        evaluate_stale(LAST_SNAPSHOT, LAST_SNAPSHOT, limit)


def test_a_stale_decision_is_a_guard_decision():
    assert isinstance(evaluate_stale(None, LAST_SNAPSHOT, 60), GuardDecision)
