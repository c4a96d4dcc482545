"""Adding a guard is one file: a guard registered here is run by the ingest's loop like the shipped ones."""

from __future__ import annotations

import dataclasses
from collections import Counter
from types import MappingProxyType

import pytest

from tests.support.apps import make_settings, start_api, stop_api
from tests.support.bridging import position, register_follower, snapshot
from tradeguard.domain.guards import (
    GUARDS,
    Action,
    GuardAlert,
    GuardAuditEntry,
    GuardInputs,
    GuardVerdict,
    MayCause,
    Trigger,
    UndeclaredEffect,
    registry,
)


class ConcentrationGuard:
    """More than two positions in one symbol: warn, close that symbol's positions, halt."""

    name = "concentration"
    trigger = Trigger.SNAPSHOT
    may_cause = MayCause(
        alerts=frozenset({"concentration"}),
        audit_entries=frozenset({"concentration"}),
        actions=frozenset({Action.CLOSE_SYMBOL, Action.HALT}),
    )

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        counts = Counter(position.symbol for position in inputs.positions)
        crowded = tuple(sorted(symbol for symbol, count in counts.items() if count > 2))
        if not crowded:
            return GuardVerdict()
        message = f"more than two positions in {', '.join(crowded)}"
        return GuardVerdict(
            records=(
                GuardAlert("concentration", "warning", message, details={"symbols": list(crowded)}),
                GuardAuditEntry("concentration", message, reason=self.name),
            ),
            halt=message,
            close_symbols=crowded,
        )


class OverreachingGuard(ConcentrationGuard):
    """Asks to close every position, which it never declared."""

    name = "overreaching"

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        tickets = tuple(position.ticket for position in inputs.positions)
        return dataclasses.replace(super().decide(inputs), close_tickets=tickets)


class SelfHaltingGuard:
    """Halts by writing the trading state's column itself, past the HALT action's alert and audit."""

    name = "self_halting"
    trigger = Trigger.SNAPSHOT
    may_cause = MayCause(remembers=frozenset({"trading_allowed"}))

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        return GuardVerdict(remember=MappingProxyType({"trading_allowed": False}))


@pytest.fixture
async def api_with_guard(request, tmp_path):
    running, lifespan = await start_api(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'tg.db'}"))
    policy = running.services.ingest_policy
    guards = dataclasses.replace(policy.guards, guards=registry((*GUARDS, request.param())))
    running.services.ingest_policy = dataclasses.replace(policy, guards=guards)
    yield running
    await stop_api(running, lifespan)


CROWDED = [position(1), position(2), position(3), position(4, symbol="GBPUSD")]


@pytest.mark.parametrize("api_with_guard", [ConcentrationGuard], indirect=True)
async def test_a_registered_guard_is_run_on_every_snapshot_and_causes_what_it_declares(api_with_guard):
    follower = await register_follower(api_with_guard)

    answer = await follower.bridge.send_snapshot(snapshot(*CROWDED, equity="10000"))

    assert sorted((c["ticket"], c["cause"]) for c in answer["commands"]) == [
        ("1", "concentration"),
        ("2", "concentration"),
        ("3", "concentration"),
    ]
    alerts = (await follower.owner.get("/api/v1/alerts", account_id=follower.account_id)).json()["alerts"]
    assert sorted(alert["kind"] for alert in alerts) == ["concentration", "halt"]
    [entry] = await follower.events(event_type="concentration")
    assert (entry["reason"], entry["message"]) == ("concentration", "more than two positions in EURUSD")
    status = (await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)).json()
    assert status["trading_allowed"] is False
    assert status["drawdown_guard"]["halt_reason"] == "more than two positions in EURUSD"
    assert status["drawdown_guard"]["peak_equity"] == 10000
    [halted] = await follower.events(event_type="halted")
    assert halted["reason"] == "concentration"


@pytest.mark.parametrize("api_with_guard", [OverreachingGuard], indirect=True)
async def test_a_guard_asking_for_an_action_it_did_not_declare_is_refused_and_nothing_is_kept(api_with_guard):
    follower = await register_follower(api_with_guard)

    with pytest.raises(UndeclaredEffect, match="action 'close_positions'"):
        await follower.bridge.send_snapshot(snapshot(*CROWDED, equity="10000"))

    assert await follower.bridge.poll_commands() == []
    alerts = (await follower.owner.get("/api/v1/alerts", account_id=follower.account_id)).json()["alerts"]
    assert alerts == []
    status = (await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)).json()
    assert status["trading_allowed"] is True
    assert (await follower.status())["total_syncs"] == 0


@pytest.mark.parametrize("api_with_guard", [SelfHaltingGuard], indirect=True)
async def test_a_guard_cannot_halt_by_writing_the_trading_state_itself(api_with_guard):
    follower = await register_follower(api_with_guard)

    with pytest.raises(ValueError, match="cannot write the account state's field 'trading_allowed'"):
        await follower.bridge.send_snapshot(snapshot(*CROWDED, equity="10000"))

    status = (await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)).json()
    assert status["trading_allowed"] is True
