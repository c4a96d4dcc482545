"""The simulation: the loop that steps the market, the brokers, the platform and the bridges.

One step moves the market, settles each broker (stops hit, orders filled), plays the scenario's
events for the step (or trades freely after the script), and sends one snapshot per account;
every few steps the bridges also poll for commands. A step reports each account as the broker
has it and as tradeguard last answered.

An account can be reported by a real bridge outside the simulation (`reported_elsewhere`): its
broker then keeps its state where that bridge reads it (`tradeguard.bridges.simulated_terminal`:
a stand-in MT5 terminal), the simulation only reads tradeguard's view of it back, and broker time
is the real clock's, which is the time that bridge reports in.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

import httpx

from tradeguard.bridges.client import BridgeClient, BridgeError
from tradeguard.bridges.simulator.bridge import ReportedElsewhere, SimulatedBridge
from tradeguard.bridges.simulator.broker import CENT, LOT, Fill, Order, SimulatedBroker
from tradeguard.bridges.simulator.clock import BrokerClock
from tradeguard.bridges.simulator.market import Market
from tradeguard.bridges.simulator.platform import SimulatedPlatform
from tradeguard.bridges.simulator.scenario import (
    DEMO_SCENARIO,
    Gap,
    ManualTrade,
    Role,
    Scenario,
    ScriptedEvent,
    Signal,
    Trend,
)
from tradeguard.domain.model import CloseReason, Side

log = logging.getLogger(__name__)

BrokerFactory = Callable[[Market, random.Random], SimulatedBroker]
"""An account's broker on the simulation's market, drawing from its random generator."""


@dataclass(frozen=True, slots=True)
class SimEvent:
    step: int
    account_id: int | None
    text: str


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as the simulator sees it: the broker's numbers and tradeguard's last answer."""

    account_id: int
    role: str
    balance: Decimal
    equity: Decimal
    drawdown_pct: Decimal
    open_positions: int
    status: str | None
    matched_positions: int
    divergences: int
    pending_trades: int
    commands_executed: int


@dataclass(frozen=True, slots=True)
class StepReport:
    step: int
    taken_at: datetime
    accounts: tuple[AccountView, ...]
    events: tuple[SimEvent, ...]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    steps: int
    accounts: tuple[AccountView, ...]
    problems: tuple[str, ...]
    """Requests that failed unexpectedly (not counting endpoints that are not built yet)."""


@dataclass(slots=True)
class SimulatedAccount:
    account_id: int
    role: Role
    broker: SimulatedBroker
    bridge: SimulatedBridge | ReportedElsewhere
    peak_equity: Decimal

    def track_peak(self) -> None:
        self.peak_equity = max(self.peak_equity, self.broker.equity())

    def view(self) -> AccountView:
        equity = self.broker.equity()
        summary = self.bridge.last_summary or {}
        return AccountView(
            account_id=self.account_id,
            role=self.role.value,
            balance=self.broker.balance,
            equity=equity,
            drawdown_pct=((self.peak_equity - equity) / self.peak_equity * 100).quantize(CENT)
            if self.peak_equity > 0
            else Decimal(0),
            open_positions=len(self.broker.positions),
            status=summary.get("status"),
            matched_positions=summary.get("matched_positions", 0),
            divergences=summary.get("divergences_detected", 0),
            pending_trades=summary.get("pending_trades", 0),
            commands_executed=self.bridge.commands_executed,
        )


class Simulation:
    """Steps the market, the brokers, the platform and the bridges; one snapshot per account per step."""

    def __init__(
        self,
        *,
        market: Market,
        platform: SimulatedPlatform,
        accounts: Sequence[SimulatedAccount],
        scenario: Scenario,
        clock: BrokerClock,
        rng: random.Random,
        poll_every_steps: int = 5,
    ) -> None:
        self.market = market
        self.platform = platform
        self.accounts = list(accounts)
        self.scenario = scenario
        self.clock = clock
        self.step_number = 0
        self.problems: list[str] = []
        self._rng = rng
        self._poll_every_steps = poll_every_steps
        self._events: list[SimEvent] = []
        self._halted: set[int] = set()

    def note(self, account_id: int | None, text: str) -> None:
        self._events.append(SimEvent(self.step_number, account_id, text))

    async def step(self) -> StepReport:
        self.step_number += 1
        self._events = []
        now = self.clock.tick()
        scripted = self.scenario.at(self.step_number)

        self._move_market(scripted)
        for account in self.accounts:
            self._settle_broker(account, now)
        for event in scripted:
            if isinstance(event, Signal):
                for account in self._accounts_of(event.role):
                    await self._send_signal(account, event, now)
            elif isinstance(event, ManualTrade):
                for account in self._accounts_of(event.role):
                    self._open_by_hand(account, event.symbol, event.side, event.volume, now)
        if self.step_number > self.scenario.scripted_steps:
            for account in self.accounts:
                await self._trade_freely(account, now)

        for account in self.accounts:
            await self._sync(account, now)
            account.track_peak()
        if self._poll_every_steps and self.step_number % self._poll_every_steps == 0:
            for account in self.accounts:
                await account.bridge.poll()

        return StepReport(
            self.step_number, now, tuple(account.view() for account in self.accounts), tuple(self._events)
        )

    async def run(
        self,
        *,
        steps: int | None,
        cadence_seconds: float,
        on_step: Callable[[StepReport], None] | None = None,
    ) -> SimulationResult:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while steps is None or self.step_number < steps:
            report = await self.step()
            if on_step is not None:
                on_step(report)
            # A fixed rate, not a fixed pause, so slow steps do not stretch the cadence; but after a
            # stall, carry on from now rather than catch up in a burst of snapshots.
            next_at += cadence_seconds
            delay = next_at - loop.time()
            if delay < 0:
                next_at = loop.time()
            await asyncio.sleep(max(0.0, delay))
        return SimulationResult(
            self.step_number, tuple(account.view() for account in self.accounts), tuple(self.problems)
        )

    # One step's parts.

    def _move_market(self, scripted: Sequence[ScriptedEvent]) -> None:
        for event in scripted:
            if isinstance(event, Trend):
                self.market.start_trend(event.symbol, event.pct_per_step, event.steps)
                self.note(
                    None,
                    f"{event.symbol} starts moving {event.pct_per_step} % a step for {event.steps} steps",
                )
        self.market.walk()
        for event in scripted:
            if isinstance(event, Gap):
                before = self.market.price(event.symbol).bid
                self.market.gap(event.symbol, event.pct)
                self.note(
                    None,
                    f"{event.symbol} gaps {event.pct} %: {before} -> {self.market.price(event.symbol).bid}",
                )

    def _settle_broker(self, account: SimulatedAccount, now: datetime) -> None:
        for closed in account.broker.trigger_stops(now):
            what = f"{closed.symbol} {closed.side.value} {closed.volume} (ticket {closed.ticket})"
            cause = (
                f"the bridge closed {what} on a command"
                if closed.reason is CloseReason.CLOSE_COMMAND
                else f"{closed.why} hit: {what} closed"
            )
            self.note(account.account_id, f"{cause} at {closed.close_price}, P&L {closed.profit}")
        for position, order, fill in account.broker.fill_due_orders(self.step_number, now):
            if fill is Fill.SLIPPED:
                self.note(
                    account.account_id,
                    f"broker filled trade {order.trade_id} with slippage: {order.symbol} {order.side.value} "
                    f"{order.volume} at {position.open_price}, {order.price} asked",
                )
            elif fill is Fill.PARTIAL:
                self.note(
                    account.account_id,
                    f"broker filled trade {order.trade_id} in part: {order.symbol} {order.side.value} "
                    f"{position.volume} of {order.volume} lots",
                )

    async def _send_signal(self, account: SimulatedAccount, signal: Signal, now: datetime) -> None:
        """The platform records the expected trade, then routes the order to the broker."""
        if not await self.platform.trading_allowed(account.account_id):
            if account.account_id not in self._halted:
                self._halted.add(account.account_id)
                self.note(account.account_id, "halted by tradeguard: the platform sends it no more trades")
            return
        self._halted.discard(account.account_id)
        symbol, side, volume, fill = signal.symbol, signal.side, signal.volume, signal.fill
        spec = self.market.specs[symbol]
        price = self.market.price(symbol).to_open(side)
        stop_pips, take_pips = signal.stop_pips, signal.take_pips
        order = Order(
            trade_id=self.platform.next_trade_id(account.account_id),
            symbol=symbol,
            side=side,
            volume=volume,
            # The platform sends orders at the signal's price; the broker honours it unless it slips.
            price=price,
            stop_loss=spec.round(price - spec.pips(stop_pips) * side.sign) if stop_pips else None,
            take_profit=spec.round(price + spec.pips(take_pips) * side.sign) if take_pips else None,
        )
        try:
            await self.platform.record(account.account_id, order, opened_at=now)
        except (BridgeError, httpx.HTTPError) as exc:
            self._problem(account, f"recording trade {order.trade_id} failed: {exc}")
            return
        delay = self._rng.randint(1, self.scenario.max_fill_delay_steps)
        account.broker.place(order, fill, due_step=self.step_number + delay)
        if fill is Fill.LOST:
            self.note(
                account.account_id, f"broker lost trade {order.trade_id} ({symbol} {side.value} {volume})"
            )

    def _open_by_hand(
        self, account: SimulatedAccount, symbol: str, side: Side, volume: Decimal, now: datetime
    ) -> None:
        position = account.broker.open_by_hand(symbol, side, volume, now)
        self.note(
            account.account_id,
            f"someone opened {symbol} {side.value} {volume} by hand on the broker (ticket {position.ticket})",
        )

    async def _trade_freely(self, account: SimulatedAccount, now: datetime) -> None:
        settings = self.scenario.free_running
        if len(account.broker.positions) >= settings.max_open_positions:
            return
        troubled = account.role in settings.troubled_roles
        if self._rng.random() < settings.signal_probability:
            await self._send_signal(account, self._random_signal(account.role, troubled), now)
        if troubled and self._rng.random() < settings.manual_trade_probability:
            symbol = self._rng.choice(list(self.market.specs))
            side = self._rng.choice((Side.BUY, Side.SELL))
            self._open_by_hand(account, symbol, side, self._random_volume(symbol), now)

    def _random_signal(self, role: Role, troubled: bool) -> Signal:
        symbol = self._rng.choice(list(self.market.specs))
        typical = self.market.specs[symbol].typical_stop_pips
        stop_pips = typical + self._rng.randint(-typical // 3, typical // 3)
        fill = Fill.CLEAN
        if troubled:
            weights = self.scenario.free_running.troubled_fills
            fill = self._rng.choices(list(weights), weights=list(weights.values()))[0]
        return Signal(
            step=self.step_number,
            role=role,
            symbol=symbol,
            side=self._rng.choice((Side.BUY, Side.SELL)),
            volume=self._random_volume(symbol),
            fill=fill,
            stop_pips=stop_pips,
            take_pips=stop_pips * self._rng.choice((3, 4)) // 2,
        )

    def _random_volume(self, symbol: str) -> Decimal:
        most_lots = 10 if self.market.specs[symbol].contract_size < 1000 else 50
        return LOT * self._rng.randint(1, most_lots)

    async def _sync(self, account: SimulatedAccount, now: datetime) -> None:
        try:
            summary = await account.bridge.sync(now)
        except (BridgeError, httpx.HTTPError, ValueError) as exc:
            self._problem(account, f"snapshot failed: {exc}")
            return
        if not summary.get("applied", True):
            self._problem(account, f"snapshot taken at {now.isoformat()} was older than the last one applied")

    def _accounts_of(self, role: Role) -> list[SimulatedAccount]:
        return [account for account in self.accounts if account.role is role]

    def _problem(self, account: SimulatedAccount, text: str) -> None:
        log.warning("account %s: %s", account.account_id, text)
        self.problems.append(f"step {self.step_number}, account {account.account_id}: {text}")
        self.note(account.account_id, text)


def build_simulation(
    http: httpx.AsyncClient,
    *,
    user_token: str,
    accounts: Sequence[int],
    device_credentials: Mapping[int, tuple[str, str]],
    seed: int,
    steps: int | None = None,
    scenario: Scenario = DEMO_SCENARIO,
    seconds_per_step: float = 5.0,
    renew_token: Callable[[], Awaitable[str]] | None = None,
    clock: BrokerClock | None = None,
    reported_elsewhere: Mapping[int, BrokerFactory] = MappingProxyType({}),
) -> Simulation:
    """Accounts take the scenario's roles in order; each needs a device (device_id, secret) of its own.

    The broker clock starts far enough back for the whole run (or the scripted part, when the run
    has no end) to step at `seconds_per_step` of broker time without reaching the present.

    The accounts of `reported_elsewhere` get their broker from its factory and are reported by a
    bridge outside the simulation (give them a real-time clock: that bridge's snapshots carry its
    own time); the others by a `SimulatedBridge` with their device.
    """
    rng = random.Random(seed)
    market = Market(rng)
    tickets = itertools.count(50_000_001)
    platform = SimulatedPlatform(http, user_token, renew_token=renew_token)
    simulation = Simulation(
        market=market,
        platform=platform,
        accounts=[],
        scenario=scenario,
        clock=clock or BrokerClock.starting_back(steps or scenario.scripted_steps, seconds_per_step),
        rng=rng,
    )
    for index, account_id in enumerate(accounts):
        bridge: SimulatedBridge | ReportedElsewhere
        if account_id in reported_elsewhere:
            broker = reported_elsewhere[account_id](market, rng)
            bridge = ReportedElsewhere(account_id, broker, platform, simulation.note)
        else:
            device_id, secret = device_credentials[account_id]
            broker = SimulatedBroker(market, rng, tickets, balance=scenario.starting_balance)
            client = BridgeClient(http, device_id=device_id, secret=secret)
            bridge = SimulatedBridge(account_id, broker, client, simulation.note)
        simulation.accounts.append(
            SimulatedAccount(
                account_id=account_id,
                role=scenario.role_of(index),
                broker=broker,
                bridge=bridge,
                peak_equity=broker.equity(),
            )
        )
    return simulation


async def run_demo_simulation(
    base_url: str,
    *,
    user_token: str,
    accounts: Sequence[int],
    device_credentials: Mapping[int, tuple[str, str]],
    cadence_seconds: float,
    steps: int | None,
    seed: int,
    http: httpx.AsyncClient | None = None,
    scenario: Scenario = DEMO_SCENARIO,
    seconds_per_step: float = 5.0,
    on_step: Callable[[StepReport], None] | None = None,
    renew_token: Callable[[], Awaitable[str]] | None = None,
    clock: BrokerClock | None = None,
    reported_elsewhere: Mapping[int, BrokerFactory] = MappingProxyType({}),
) -> SimulationResult:
    """Drive the accounts through the scenario, one snapshot each every `cadence_seconds`.

    `steps=None` runs until cancelled. `http` (e.g. an httpx client on an ASGI app) replaces a
    client on `base_url`. The same seed, scenario and server answers give the same run.
    `clock` and `reported_elsewhere` as for `build_simulation`.
    """
    own_client = http is None
    client = http or httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0))
    try:
        simulation = build_simulation(
            client,
            user_token=user_token,
            accounts=accounts,
            device_credentials=device_credentials,
            seed=seed,
            steps=steps,
            scenario=scenario,
            seconds_per_step=seconds_per_step,
            renew_token=renew_token,
            clock=clock,
            reported_elsewhere=reported_elsewhere,
        )
        return await simulation.run(steps=steps, cadence_seconds=cadence_seconds, on_step=on_step)
    finally:
        if own_client:
            await client.aclose()
