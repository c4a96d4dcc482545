"""What the drawdown guard's decision costs per snapshot, for rule sets of growing size.

    .venv/bin/python -m bench rules_decide --rounds 3 --calls 20000

Builds the guard's inputs once (10 positions, a stored state of the account after a normal
snapshot) and calls `DrawdownGuard().decide` on them `--calls` times per round, with the moment
moving on a second per call, then encodes the state it asks to remember as the shell stores it.
Printed: process CPU per decision, best of `--rounds`, for the rule set of today's default
settings with a daily loss limit (3 rules), FTMO 2-Step with a shadow rule (3 rules), and ten
rules. No database, no event loop: the pure decision alone.

Against a checkout from before rules were data (only the settings can be judged there), run this
module from here with that checkout's code first on the path:
`PYTHONPATH=<checkout>/src .venv/bin/python -m bench rules_decide`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson

from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.domain.guards import DrawdownGuard, GuardInputs
from tradeguard.domain.model import BrokerPosition, Side
from tradeguard.domain.trading import TradingState

START = datetime(2026, 3, 5, 12, tzinfo=UTC)
POSITIONS = tuple(
    BrokerPosition(
        str(ticket), "EURUSD", Side.BUY, Decimal(1), Decimal("1.1"), Decimal("1.1"), START, Decimal(-3)
    )
    for ticket in range(10)
)


def _rule_sets(config: dict[str, Any]) -> dict[str, Any]:
    """The rule sets this checkout can judge, by name; only the settings' before rules were data."""
    try:
        from tradeguard.accounts.risk_rules import RuleSetIn, rule_set_of
    except ImportError:
        return {"settings (3 rules)": None}
    floating = {
        "id": "watch",
        "metric": "floating",
        "shadow": True,
        "steps": [
            {"tier": "alert", "threshold": {"amount": "200"}},
            {"tier": "halt", "threshold": {"amount": "400"}},
        ],
    }
    ten = [
        {
            **floating,
            "id": f"rule-{index}",
            "shadow": False,
            "metric": "equity",
            "reference": "high_water_mark",
        }
        for index in range(10)
    ]
    return {
        "settings (3 rules)": rule_set_of(None, config),
        "ftmo-2-step + shadow (3 rules)": RuleSetIn.model_validate(
            {"preset": "ftmo-2-step", "initial_balance": "10000", "rules": [floating]}
        ).to_domain(),
        "ten rules": RuleSetIn.model_validate({"rules": ten}).to_domain(),
    }


def _stored(rule_set: Any) -> dict[str, Any]:
    """The account's state after a first snapshot at 10,000, as the shell hands it to the guard."""
    stored: dict[str, Any] = {
        "peak_equity": Decimal(10000),
        "drawdown_level": "normal",
        "consecutive_critical": 0,
        "market_levels": {},
        "feed_stale": False,
        "last_sync_at": START,
    }
    if rule_set is None:
        stored |= {"day_anchor_value": Decimal(10000), "day_anchor_start": START.replace(hour=0)}
        return stored
    first = GuardInputs(
        account_id=1,
        at=START,
        config=MappingProxyType({"rule_set": rule_set}),
        stored=MappingProxyType({**stored, "rule_states": None}),
        trading=TradingState.active(),
        equity=Decimal(10000),
        balance=Decimal(10000),
        positions=POSITIONS,
    )
    remembered = DrawdownGuard().decide(first).remember
    return stored | {"rule_states": orjson.loads(orjson.dumps(remembered["rule_states"], default=str))}


def _decider(config: dict[str, Any], rule_set: Any) -> Callable[[int], None]:
    config = {**config, "rule_set": rule_set} if rule_set is not None else config
    frozen_config = MappingProxyType(config)
    stored = MappingProxyType(_stored(rule_set))
    guard = DrawdownGuard()

    def decide(second: int) -> None:
        verdict = guard.decide(
            GuardInputs(
                account_id=1,
                at=START + timedelta(seconds=second),
                config=frozen_config,
                stored=stored,
                trading=TradingState.active(),
                equity=Decimal("9950.5"),
                balance=Decimal(10000),
                positions=POSITIONS,
            )
        )
        if "rule_states" in verdict.remember:
            orjson.dumps(verdict.remember["rule_states"], default=str)

    return decide


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    config = GuardConfig(daily_loss_limit_pct=Decimal(5)).model_dump()
    for name, rule_set in _rule_sets(config).items():
        decide = _decider(config, rule_set)
        for second in range(1_000):
            decide(second)
        best = float("inf")
        for _ in range(args.rounds):
            started = time.process_time()
            for second in range(args.calls):
                decide(second)
            best = min(best, (time.process_time() - started) / args.calls * 1e6)
        print(f"{name}: {best:.1f} µs CPU per decision (best of {args.rounds} rounds of {args.calls})")
    return 0
