"""The scenario: which account does what at which step, then free-running trading.

Accounts take the scenario's roles in turn. The script sends matched trades, divergences (a slip,
a partial fill, a lost order, a trade opened by hand), a crash and a gap; after it, occasional
signals on every account, with trouble only where the role has it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from tradeguard.bridges.simulator.broker import Fill
from tradeguard.domain.model import Side


class Role(enum.StrEnum):
    """What an account is in the story. Accounts take the scenario's roles in turn."""

    STEADY = "steady"
    """Follows every signal cleanly: its trades are matched."""
    DIVERGENT = "divergent"
    """Its broker misbehaves: slippage, a partial fill, a lost order, a trade opened by hand."""
    RECKLESS = "reckless"
    """Oversized and without stops: a falling market takes its equity far below the peak."""


@dataclass(frozen=True, slots=True)
class Signal:
    """The platform sends a trade to every account of `role`; their brokers fill it as `fill` says."""

    step: int
    role: Role
    symbol: str
    side: Side
    volume: Decimal
    fill: Fill = Fill.CLEAN
    stop_pips: int | None = None
    take_pips: int | None = None


@dataclass(frozen=True, slots=True)
class ManualTrade:
    """Someone opens a position on the broker by hand: tradeguard sees it as unexpected_on_broker."""

    step: int
    role: Role
    symbol: str
    side: Side
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Trend:
    """The symbol moves `pct_per_step` % a step for `steps` steps, on top of its random walk."""

    step: int
    symbol: str
    pct_per_step: Decimal
    steps: int


@dataclass(frozen=True, slots=True)
class Gap:
    """The symbol jumps `pct` % between two consecutive quotes."""

    step: int
    symbol: str
    pct: Decimal


ScriptedEvent = Signal | ManualTrade | Trend | Gap


@dataclass(frozen=True, slots=True)
class FreeRunning:
    """Trading after the script: occasional signals on every account; trouble only where the role has it."""

    signal_probability: float = 0.06
    max_open_positions: int = 5
    troubled_roles: frozenset[Role] = frozenset({Role.DIVERGENT})
    manual_trade_probability: float = 0.01
    troubled_fills: Mapping[Fill, int] = field(
        default_factory=lambda: MappingProxyType(
            {Fill.CLEAN: 70, Fill.SLIPPED: 12, Fill.PARTIAL: 10, Fill.LOST: 8}
        )
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    roles: tuple[Role, ...]
    script: tuple[ScriptedEvent, ...]
    free_running: FreeRunning = field(default_factory=FreeRunning)
    starting_balance: Decimal = Decimal(10_000)
    max_fill_delay_steps: int = 2

    @property
    def scripted_steps(self) -> int:
        """The step after which everything scripted has happened and shown."""
        return max(event.step for event in self.script) + self.max_fill_delay_steps

    def at(self, step: int) -> list[ScriptedEvent]:
        return [event for event in self.script if event.step == step]

    def role_of(self, index: int) -> Role:
        return self.roles[index % len(self.roles)]


def _d(text: str) -> Decimal:
    return Decimal(text)


DEMO_SCENARIO = Scenario(
    roles=(Role.STEADY, Role.DIVERGENT, Role.RECKLESS),
    script=(
        Signal(1, Role.STEADY, "EURUSD", Side.BUY, _d("0.50"), stop_pips=20, take_pips=40),
        Signal(1, Role.DIVERGENT, "GBPUSD", Side.SELL, _d("0.30"), stop_pips=25, take_pips=50),
        Signal(1, Role.RECKLESS, "GBPUSD", Side.BUY, _d("1.00")),
        Signal(2, Role.STEADY, "USDJPY", Side.SELL, _d("0.40"), stop_pips=20, take_pips=40),
        Signal(2, Role.DIVERGENT, "EURUSD", Side.BUY, _d("0.40"), Fill.SLIPPED, stop_pips=20, take_pips=40),
        Signal(3, Role.STEADY, "XAUUSD", Side.BUY, _d("0.02"), stop_pips=1000, take_pips=2000),
        Signal(3, Role.DIVERGENT, "XAUUSD", Side.BUY, _d("0.04"), Fill.PARTIAL),
        Signal(4, Role.DIVERGENT, "USDJPY", Side.BUY, _d("0.30"), Fill.LOST, stop_pips=20, take_pips=40),
        ManualTrade(5, Role.DIVERGENT, "EURUSD", Side.SELL, _d("0.10")),
        # About -2.7 % in six steps: the reckless account's 1-lot GBPUSD buy loses over 30 % of its equity.
        Trend(6, "GBPUSD", _d("-0.45"), 6),
        Gap(13, "XAUUSD", _d("-12")),
    ),
)
