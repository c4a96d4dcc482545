"""The interface every guard implements, the registry's rules, and each registered guard's verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

import pytest

from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.domain.guards import (
    GUARDS,
    STALE_FEED,
    Action,
    DrawdownGuard,
    GuardAlert,
    GuardAuditEntry,
    GuardInputs,
    GuardVerdict,
    InvalidGuardRegistry,
    MarketGuard,
    MayCause,
    StaleFeedGuard,
    Trigger,
    UndeclaredEffect,
    check_declared,
    guards_on,
    registry,
)
from tradeguard.domain.guards.drawdown import settings_rule_set
from tradeguard.domain.model import BrokerPosition, Quote, Side
from tradeguard.domain.trading import TradingState

NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
HELD = BrokerPosition("7", "EURUSD", Side.BUY, Decimal(1), Decimal("1.1"), Decimal("1.1"), NOW, Decimal(0))
CONFIG = MappingProxyType(
    {**GuardConfig().model_dump(), "rule_set": settings_rule_set(GuardConfig().model_dump())}
)
NEVER_JUDGED = MappingProxyType(
    {
        "peak_equity": None,
        "drawdown_level": "normal",
        "consecutive_critical": 0,
        "rule_states": None,
        "market_levels": {},
        "feed_stale": False,
        "last_sync_at": None,
    }
)


def inputs(**fields) -> GuardInputs:
    values = {
        "account_id": 7,
        "at": NOW,
        "config": CONFIG,
        "stored": NEVER_JUDGED,
        "trading": TradingState.active(),
        "equity": Decimal(10000),
        "balance": Decimal(10000),
        **fields,
    }
    return GuardInputs(**values)


@dataclass(frozen=True)
class Declared:
    """A guard whose verdict is given, to test what the shell accepts of it."""

    verdict: GuardVerdict
    may_cause: MayCause = field(default_factory=MayCause)
    name: str = "declared"
    trigger: Trigger = Trigger.SNAPSHOT

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        return self.verdict


EVERYTHING = GuardVerdict(
    records=(GuardAlert("exposure", "warning", "too much"), GuardAuditEntry("exposure", "too much")),
    remember=MappingProxyType({"drawdown_level": "warning"}),
    halt="too much",
    close_symbols=("EURUSD",),
)


def test_a_verdict_within_its_declaration_is_accepted():
    guard = Declared(
        EVERYTHING,
        MayCause(
            alerts=frozenset({"exposure"}),
            audit_entries=frozenset({"exposure"}),
            actions=frozenset({Action.HALT, Action.CLOSE_SYMBOL}),
            remembers=frozenset({"drawdown_level"}),
        ),
    )

    check_declared(guard, guard.decide(inputs()))


def test_a_verdict_asking_for_anything_undeclared_is_refused_naming_all_of_it():
    guard = Declared(EVERYTHING, MayCause(alerts=frozenset({"exposure"})))

    with pytest.raises(UndeclaredEffect) as refused:
        check_declared(guard, guard.decide(inputs()))

    assert str(refused.value) == (
        "guard 'declared' did not declare audit entry 'exposure', action 'close_symbol', "
        "action 'halt', field 'drawdown_level'"
    )


def test_closing_named_positions_is_an_action_of_its_own():
    guard = Declared(GuardVerdict(close_tickets=("7",)), MayCause(actions=frozenset({Action.CLOSE_SYMBOL})))

    with pytest.raises(UndeclaredEffect, match="action 'close_positions'"):
        check_declared(guard, guard.decide(inputs()))


def test_two_guards_of_one_name_cannot_be_registered_together():
    with pytest.raises(InvalidGuardRegistry, match="unique"):
        registry((DrawdownGuard(), Declared(GuardVerdict(), name="drawdown")))


def test_a_guard_run_on_the_clock_cannot_declare_closing_positions():
    closing = Declared(
        GuardVerdict(), MayCause(actions=frozenset({Action.CLOSE_POSITIONS})), trigger=Trigger.CLOCK
    )

    with pytest.raises(InvalidGuardRegistry, match="clock"):
        registry((closing,))


def test_drawdown_and_market_run_on_snapshots_and_the_stale_feed_on_the_clock():
    assert [guard.name for guard in guards_on(Trigger.SNAPSHOT)] == ["drawdown", "market"]
    assert [guard.name for guard in guards_on(Trigger.CLOCK)] == [STALE_FEED]
    assert len(GUARDS) == 3


def test_every_registered_guard_verdict_stays_within_its_declaration():
    at_peak = {**NEVER_JUDGED, "peak_equity": Decimal(10000)}
    spread = Quote(symbol="EURUSD", bid=Decimal("1.08000"), ask=Decimal("1.10160"))
    quiet = {**NEVER_JUDGED, "last_sync_at": NOW - timedelta(minutes=5)}
    cases = [
        (DrawdownGuard(), inputs(stored=at_peak, equity=Decimal(7900))),
        (MarketGuard(), inputs(quotes=(spread,))),
        (StaleFeedGuard(), inputs(stored=quiet)),
    ]
    for guard, judged in cases:
        verdict = guard.decide(judged)
        assert verdict.asks_anything
        check_declared(guard, verdict)


def test_the_drawdown_guard_entering_critical_alerts_halts_and_closes_everything():
    at_peak = {**NEVER_JUDGED, "peak_equity": Decimal(10000)}

    verdict = DrawdownGuard().decide(inputs(stored=at_peak, equity=Decimal(7900), positions=(HELD,)))

    [alert] = verdict.alerts
    [entry] = verdict.audit_entries
    assert (alert.kind, alert.level) == ("drawdown", "critical")
    assert dict(alert.details) == {
        "drawdown_pct": Decimal("21.0000"),
        "equity": Decimal(7900),
        "peak_equity": Decimal(10000),
    }
    assert (entry.event_type, entry.reason, entry.details["level"]) == ("guard_level", "drawdown", "critical")
    assert verdict.halt == alert.message
    assert verdict.actions == {Action.HALT, Action.CLOSE_POSITIONS}
    assert verdict.remember["drawdown_level"] == "critical"
    assert verdict.remember["drawdown_pct"] == Decimal("21.0000")


def test_the_drawdown_guard_does_not_halt_an_account_already_halted():
    halted = TradingState.active().halt("earlier", since=NOW - timedelta(hours=1))
    critical = {**NEVER_JUDGED, "peak_equity": Decimal(10000), "drawdown_level": "critical"}

    verdict = DrawdownGuard().decide(
        inputs(stored=critical, equity=Decimal(7800), trading=halted, positions=(HELD,))
    )

    assert verdict.halt is None
    assert verdict.close_tickets == ("7",)
    assert verdict.records == ()


def test_the_market_guard_remembers_the_last_measurement_of_symbols_not_quoted_now():
    gbpusd = {"mid": "1.25005", "level": "warning", "spread_pct": "0.6000", "bid": "1.25", "ask": "1.2575"}
    stored = {**NEVER_JUDGED, "market_levels": {"GBPUSD": gbpusd}}
    quote = Quote(symbol="EURUSD", bid=Decimal("1.08600"), ask=Decimal("1.08610"))

    verdict = MarketGuard().decide(inputs(stored=stored, quotes=(quote,)))

    levels = verdict.remember["market_levels"]
    assert levels["GBPUSD"] == {**gbpusd, "mid": Decimal("1.25005"), "level": "warning"}
    assert (levels["EURUSD"]["level"], levels["EURUSD"]["mid"]) == ("normal", Decimal("1.08605"))
    assert verdict.records == () and verdict.close_symbols == ()


def test_the_stale_feed_guard_marks_a_quiet_feed_once():
    quiet = {**NEVER_JUDGED, "last_sync_at": NOW - timedelta(seconds=61)}
    fresh = {**NEVER_JUDGED, "last_sync_at": NOW - timedelta(seconds=60)}

    going = StaleFeedGuard().decide(inputs(stored=quiet))
    staying = StaleFeedGuard().decide(inputs(stored={**quiet, "feed_stale": True}))
    live = StaleFeedGuard().decide(inputs(stored=fresh))

    [alert] = going.alerts
    [entry] = going.audit_entries
    assert (alert.kind, alert.level, dict(alert.details)) == (
        STALE_FEED,
        "critical",
        {"last_sync_at": quiet["last_sync_at"]},
    )
    assert (entry.event_type, entry.reason) == ("feed_stale", None)
    assert dict(going.remember) == {"feed_stale": True, "status": "error", "error_message": alert.message}
    assert not staying.asks_anything
    assert not live.asks_anything
