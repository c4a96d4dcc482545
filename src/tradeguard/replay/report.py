"""A replay said for people and programs: each decision as JSON-ready data, and in words.

The JSON shape (`decision_data`) is documented in docs/guards.md, "Replay".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from tradeguard.actions.audit import as_json_number
from tradeguard.domain.guards.drawdown import decision_message
from tradeguard.domain.guards.rule_evaluation import RuleResult
from tradeguard.domain.guards.rules import Tier
from tradeguard.domain.replay import ReplayedPoint, acting_floor, concerned_standing

CAVEATS = (
    "a halt stays until a rule's own resume lifts it: the replay makes no owner re-arm",
    "the history holds no positions: a close is of all positions (or of the rule's scope), tickets unknown",
)

_DOES = {
    Tier.ALERT: "alert",
    Tier.HALT: "halt new trades",
    Tier.CLOSE_ALL: "halt and close all positions",
    Tier.CLOSE_SCOPE: "halt and close the positions of its scope",
}


def decision_data(point: ReplayedPoint) -> dict[str, Any]:
    """One replayed snapshot: what the guard would have decided, and where every rule stood."""
    decision = point.decision
    return {
        "at": point.point.taken_at.isoformat(),
        "equity": point.point.equity,
        "balance": point.point.balance,
        "level": decision.level.value,
        "previous_level": decision.previous_level.value,
        "halted": decision.halted,
        "newly_halted": decision.newly_halted,
        "resumed": decision.resumed,
        "closes": [
            {"rule": result.rule.id, "positions": "all" if result.tier is Tier.CLOSE_ALL else "scope"}
            for result in point.closes
        ],
        "message": decision_message(decision),
        "rules": [rule_result_data(result) for result in decision.results],
    }


def rule_result_data(result: RuleResult) -> dict[str, Any]:
    standing = concerned_standing(result)
    return {
        "rule": result.rule.id,
        "shadow": result.rule.shadow,
        "changed": result.changed,
        "step": _step_name(result, result.step),
        "previous_step": _step_name(result, result.previous_step),
        "tier": None if result.tier is None else result.tier.value,
        "halts": result.halts,
        "resumed": result.resumed,
        "value": result.value,
        "reference": result.reference,
        "loss": result.loss,
        "loss_pct": result.loss_pct,
        "limit_of": standing.step.name,
        "limit": standing.limit,
        "floor": standing.step.threshold.floor,
        "headroom": standing.headroom,
        "headroom_pct": standing.headroom_pct,
        "acting_floor": acting_floor(result),
    }


def what_it_did(point: ReplayedPoint) -> list[str]:
    """The snapshot's decisions in words: the halt, the resume, the closes, each rule's step change."""
    decision = point.decision
    said: list[str] = []
    if decision.newly_halted:
        said.append("HALT: trading halted")
    if decision.resumed:
        said.append("RESUME: trading allowed again by the rules' resume")
    said += [
        f"CLOSE {'all positions' if result.tier is Tier.CLOSE_ALL else 'the positions of its scope'} "
        f"(rule {result.rule.id})"
        for result in point.closes
    ]
    said += [step_change(result) for result in point.step_changes]
    return said


def step_change(result: RuleResult) -> str:
    before = _step_name(result, result.previous_step) or "none"
    after = _step_name(result, result.step) or "none"
    does = "back under its steps" if result.tier is None else _DOES[result.tier]
    who = f"{result.rule.id} (shadow: would {does})" if result.rule.shadow else f"{result.rule.id}: {does}"
    return f"{who}, step {before} -> {after}; {standing_text(result)}"


def standing_text(result: RuleResult) -> str:
    standing = concerned_standing(result)
    limit = "" if standing.limit is None else f", limit {_money(standing.limit)}"
    floor = standing.step.threshold.floor
    below = "" if floor is None else f", floor {_money(floor)}"
    return (
        f"loss {_money(result.loss)} ({result.loss_pct:.2f}%) from {_money(result.reference)}"
        f"{limit}{below} ({standing.step.name}), headroom {_money(standing.headroom)}"
    )


def _step_name(result: RuleResult, index: int | None) -> str | None:
    return None if index is None else result.rule.steps[index].name


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def replay_json(data: Any) -> str:
    """Decisions as JSON text, numbers as JSON numbers like the API's."""
    return orjson.dumps(data, default=as_json_number, option=orjson.OPT_INDENT_2).decode()
