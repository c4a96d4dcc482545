"""A simulated broker world that drives tradeguard the way real bridges and a real platform would.

Everything goes through the public HTTP API: the platform records expected trades with a user's
JWT, each account's bridge sends signed snapshots with `BridgeClient` and carries out the close
commands it gets back. Nothing here touches the database, so the simulator exercises exactly what
an MT5 bridge would, and runs against any tradeguard it can reach.

From the bottom up:

- `Market`: one seeded random walk per symbol (bid, ask, exact decimals), plus scripted trends and gaps;
- `SimulatedBroker`: one account at the broker: balance, positions, orders waiting to be filled;
- `SimulatedPlatform`: the signal platform, which tells tradeguard what each account should hold;
- `SimulatedBridge`: an account's bridge: snapshots out, close commands in, acknowledgements out;
- `Scenario`: which account does what at which step (matched trades, divergences, a crash, a gap),
  then free-running trading with occasional trouble;
- `Simulation` and `run_demo_simulation`: the loop that ties them together.

Broker time is simulated (`BrokerClock`): each step moves it `seconds_per_step` forward, never past
the real clock. A run that starts its clock in the past covers minutes of broker time in a few fast
steps, so a 30 s grace period elapses in a test without the test waiting for it.

An account can also be reported by a real bridge outside the simulation (`reported_elsewhere`): its
broker then keeps its state where that bridge reads it (`tradeguard.bridges.simulated_terminal`: a
stand-in MT5 terminal), the simulation only reads tradeguard's view of it back, and broker time is
the real clock's, which is the time that bridge reports in.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from types import MappingProxyType
from typing import Any

import httpx

from tradeguard.bridges.client import BridgeClient, BridgeError, encode_body
from tradeguard.domain.model import CloseReason, Side

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
LOT = Decimal("0.01")
ACCOUNT_CURRENCY = "USD"
TRADES_PATH = "/api/v1/accounts/{account_id}/trades"
GUARD_STATUS_PATH = "/api/v1/guards/status"
RECONCILIATION_STATUS_PATH = "/api/v1/reconciliation/status"


# --- instruments and the market -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """How one symbol trades: price precision, pip, contract, spread, and how restless it is."""

    symbol: str
    opening_bid: Decimal
    digits: int
    pip_size: Decimal
    contract_size: Decimal
    spread_points: int
    step_points: int
    """A random step moves the bid by at most twice this many points (one point = 10**-digits)."""
    typical_stop_pips: int

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def spread(self) -> Decimal:
        return self.point * self.spread_points

    @property
    def base_currency(self) -> str:
        return self.symbol[:3]

    @property
    def quote_currency(self) -> str:
        return self.symbol[3:6]

    def round(self, price: Decimal) -> Decimal:
        return price.quantize(self.point, rounding=ROUND_HALF_EVEN)

    def pips(self, count: int) -> Decimal:
        return self.pip_size * count


# Pip sizes and contract sizes agree with `tradeguard.domain.instruments.default_instrument`, so a
# "3 pip" slippage here is 3 pips to reconciliation too.
SYMBOLS: Mapping[str, SymbolSpec] = MappingProxyType(
    {
        spec.symbol: spec
        for spec in (
            SymbolSpec("EURUSD", Decimal("1.08500"), 5, Decimal("0.0001"), Decimal(100_000), 8, 12, 15),
            SymbolSpec("GBPUSD", Decimal("1.27000"), 5, Decimal("0.0001"), Decimal(100_000), 12, 15, 20),
            SymbolSpec("USDJPY", Decimal("151.500"), 3, Decimal("0.01"), Decimal(100_000), 10, 15, 20),
            SymbolSpec("XAUUSD", Decimal("2650.00"), 2, Decimal("0.01"), Decimal(100), 25, 60, 400),
        )
    }
)


@dataclass(frozen=True, slots=True)
class Price:
    symbol: str
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def to_open(self, side: Side) -> Decimal:
        return self.ask if side is Side.BUY else self.bid

    def to_close(self, side: Side) -> Decimal:
        return self.bid if side is Side.BUY else self.ask


@dataclass(slots=True)
class _Trend:
    pct_per_step: Decimal
    steps_left: int


class Market:
    """Prices shared by every simulated broker: a seeded random walk per symbol.

    The walk moves in whole points (the sum of two uniform draws, so small moves are likelier than
    large ones), which keeps every price an exact decimal at the symbol's precision.
    """

    def __init__(self, rng: random.Random, symbols: Mapping[str, SymbolSpec] = SYMBOLS) -> None:
        self._rng = rng
        self.specs = dict(symbols)
        self._bids = {symbol: spec.opening_bid for symbol, spec in self.specs.items()}
        self._trends: dict[str, _Trend] = {}

    def price(self, symbol: str) -> Price:
        spec = self.specs[symbol]
        bid = self._bids[symbol]
        return Price(symbol, bid, bid + spec.spread)

    def prices(self) -> list[Price]:
        return [self.price(symbol) for symbol in self.specs]

    def walk(self) -> None:
        for symbol, spec in self.specs.items():
            step = self._rng.randint(-spec.step_points, spec.step_points)
            step += self._rng.randint(-spec.step_points, spec.step_points)
            bid = self._bids[symbol] + spec.point * step
            trend = self._trends.get(symbol)
            if trend is not None:
                bid *= 1 + trend.pct_per_step / 100
                trend.steps_left -= 1
                if trend.steps_left == 0:
                    del self._trends[symbol]
            self.set_bid(symbol, bid)

    def start_trend(self, symbol: str, pct_per_step: Decimal, steps: int) -> None:
        self._trends[symbol] = _Trend(pct_per_step, steps)

    def gap(self, symbol: str, pct: Decimal) -> None:
        self.set_bid(symbol, self._bids[symbol] * (1 + pct / 100))

    def in_account_currency(self, amount: Decimal, currency: str) -> Decimal:
        """An amount in `currency` in USD, at the mid price of the pair that links them."""
        if currency == ACCOUNT_CURRENCY:
            return amount
        if f"{ACCOUNT_CURRENCY}{currency}" in self.specs:  # USDJPY: JPY per USD
            return amount / self.price(f"{ACCOUNT_CURRENCY}{currency}").mid
        if f"{currency}{ACCOUNT_CURRENCY}" in self.specs:  # EURUSD: USD per EUR
            return amount * self.price(f"{currency}{ACCOUNT_CURRENCY}").mid
        raise ValueError(f"no pair converts {currency} to {ACCOUNT_CURRENCY}")

    def set_bid(self, symbol: str, bid: Decimal) -> None:
        """Move the symbol to `bid`, rounded to its precision (and never below one point)."""
        spec = self.specs[symbol]
        self._bids[symbol] = max(spec.round(bid), spec.point)


# --- the broker ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """A trade the platform sent to the account: tradeguard expects it, the broker is to fill it."""

    trade_id: str
    symbol: str
    side: Side
    volume: Decimal
    price: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


class Fill(enum.StrEnum):
    """How the broker treats an order."""

    CLEAN = "clean"
    SLIPPED = "slipped"
    """Filled a few pips worse than asked: entry_slippage."""
    PARTIAL = "partial"
    """Half the volume: partial_fill."""
    LOST = "lost"
    """Never filled: pending during the grace period, then missing_on_broker."""


@dataclass(slots=True)
class Position:
    ticket: int
    symbol: str
    side: Side
    volume: Decimal
    open_price: Decimal
    opened_at: datetime
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trade_id: str | None = None
    """None when the position was opened on the broker by hand, unknown to the platform."""


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A deal in the broker's history: all or part of a position closed."""

    deal_id: int
    ticket: int
    symbol: str
    side: Side
    volume: Decimal
    close_price: Decimal
    profit: Decimal
    closed_at: datetime
    reason: CloseReason

    @property
    def why(self) -> str:
        return self.reason.value.replace("_", " ")

    def as_closed_deal(self) -> dict[str, Any]:
        """The deal as a snapshot's `closed_deals` item; the simulated broker charges no swap or commission."""
        return {
            "ticket": self.ticket,
            "deal_id": self.deal_id,
            "close_price": self.close_price,
            "profit": self.profit,
            "closed_at": self.closed_at,
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class _QueuedOrder:
    due_step: int
    order: Order
    fill: Fill


class SimulatedBroker:
    """One trading account at the broker. Equity = balance + the open positions' profits, in USD."""

    def __init__(
        self,
        market: Market,
        rng: random.Random,
        tickets: Iterator[int],
        *,
        balance: Decimal,
        leverage: int = 100,
    ) -> None:
        self.market = market
        self.balance = balance
        self.positions: dict[str, Position] = {}
        self.history: list[ClosedPosition] = []
        self._rng = rng
        self._tickets = tickets
        self._leverage = leverage
        self._queue: list[_QueuedOrder] = []

    # What happens to the account.

    def place(self, order: Order, fill: Fill, *, due_step: int) -> None:
        if fill is not Fill.LOST:
            self._queue.append(_QueuedOrder(due_step, order, fill))

    def fill_due_orders(self, step: int, now: datetime) -> list[tuple[Position, Order, Fill]]:
        due = [queued for queued in self._queue if queued.due_step <= step]
        self._queue = [queued for queued in self._queue if queued.due_step > step]
        filled = []
        for queued in due:
            position = self._open(queued.order, queued.fill, now)
            filled.append((position, queued.order, queued.fill))
        return filled

    def open_by_hand(self, symbol: str, side: Side, volume: Decimal, now: datetime) -> Position:
        price = self.market.price(symbol).to_open(side)
        return self._add_position(symbol, side, volume, price, now, trade_id=None)

    def trigger_stops(self, now: datetime) -> list[ClosedPosition]:
        """Close what crossed its stop loss or take profit, at the current price (a gap fills worse)."""
        closed = []
        for ticket, position in list(self.positions.items()):
            reason = _stop_crossed(position, self.market.price(position.symbol).to_close(position.side))
            if reason is not None:
                closed.append(self.close(ticket, reason=reason, at=now))
        return closed

    def close(
        self, ticket: str, volume: Decimal | None = None, *, reason: CloseReason, at: datetime
    ) -> ClosedPosition:
        """Close the position (or `volume` of it) at the current price; the profit goes to the balance.

        The deal goes into the history, as a broker's does.
        """
        position = self.positions[ticket]
        volume = position.volume if volume is None else min(volume, position.volume)
        price = self.market.price(position.symbol).to_close(position.side)
        profit = self._profit(position.symbol, position.side, volume, position.open_price, price)
        self.balance += profit
        if volume == position.volume:
            del self.positions[ticket]
        else:
            position.volume -= volume
        deal = ClosedPosition(
            len(self.history) + 1,
            position.ticket,
            position.symbol,
            position.side,
            volume,
            price,
            profit,
            at,
            reason,
        )
        self.history.append(deal)
        return deal

    # What the account looks like.

    def profit(self, position: Position) -> Decimal:
        price = self.market.price(position.symbol).to_close(position.side)
        return self._profit(position.symbol, position.side, position.volume, position.open_price, price)

    def equity(self) -> Decimal:
        return self.balance + sum((self.profit(position) for position in self.positions.values()), Decimal(0))

    def margin(self) -> Decimal:
        used = Decimal(0)
        for position in self.positions.values():
            spec = self.market.specs[position.symbol]
            units = position.volume * spec.contract_size
            if spec.base_currency == ACCOUNT_CURRENCY:
                used += units
            else:
                used += self.market.in_account_currency(units * position.open_price, spec.quote_currency)
        return (used / self._leverage).quantize(CENT)

    def snapshot(self, taken_at: datetime) -> dict[str, Any]:
        """The body an MT5 bridge would send: integer tickets, and 0 for a missing stop, as MT5 reports them."""
        return {
            "taken_at": taken_at,
            "balance": self.balance,
            "equity": self.equity(),
            "margin": self.margin(),
            "currency": ACCOUNT_CURRENCY,
            "positions": [
                {
                    "ticket": position.ticket,
                    "symbol": position.symbol,
                    "side": position.side.value,
                    "volume": position.volume,
                    "open_price": position.open_price,
                    "current_price": self.market.price(position.symbol).to_close(position.side),
                    "stop_loss": position.stop_loss or 0,
                    "take_profit": position.take_profit or 0,
                    "profit": self.profit(position),
                    "swap": Decimal(0),
                    "commission": Decimal(0),
                    "opened_at": position.opened_at,
                }
                for position in self.positions.values()
            ],
            "quotes": [{"symbol": p.symbol, "bid": p.bid, "ask": p.ask} for p in self.market.prices()],
        }

    def _open(self, order: Order, fill: Fill, now: datetime) -> Position:
        spec = self.market.specs[order.symbol]
        price, volume = order.price, order.volume
        if fill is Fill.SLIPPED:
            price = spec.round(price + spec.pips(self._rng.randint(3, 6)) * order.side.sign)
        elif fill is Fill.PARTIAL:
            volume = max(LOT, (volume / 2).quantize(LOT, rounding=ROUND_DOWN))
        return self._add_position(
            order.symbol,
            order.side,
            volume,
            price,
            now,
            trade_id=order.trade_id,
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
        )

    def _add_position(
        self,
        symbol: str,
        side: Side,
        volume: Decimal,
        price: Decimal,
        now: datetime,
        *,
        trade_id: str | None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> Position:
        position = Position(
            next(self._tickets),
            symbol,
            side,
            volume,
            price,
            now,
            stop_loss=stop_loss,
            take_profit=take_profit,
            trade_id=trade_id,
        )
        self.positions[str(position.ticket)] = position
        return position

    def _profit(
        self, symbol: str, side: Side, volume: Decimal, open_price: Decimal, price: Decimal
    ) -> Decimal:
        spec = self.market.specs[symbol]
        in_quote_currency = (price - open_price) * side.sign * volume * spec.contract_size
        return self.market.in_account_currency(in_quote_currency, spec.quote_currency).quantize(CENT)


def _stop_crossed(position: Position, price: Decimal) -> CloseReason | None:
    """Which of the position's stops the closing price reached, if any."""
    sign = position.side.sign
    if position.stop_loss is not None and (price - position.stop_loss) * sign <= 0:
        return CloseReason.STOP_LOSS
    if position.take_profit is not None and (price - position.take_profit) * sign >= 0:
        return CloseReason.TAKE_PROFIT
    return None


# --- time ------------------------------------------------------------------------------------------


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class BrokerClock:
    """Broker time: `seconds_per_step` forward per step, never ahead of the real clock.

    Never ahead, because tradeguard reconciles at the earlier of a snapshot's time and its arrival,
    and refuses trades opened in the future. Strictly increasing, because a snapshot not newer than
    the last one applied is ignored. Without `seconds_per_step` it is the real clock itself: for
    accounts a real bridge reports, whose snapshots carry the bridge's own (real) time.
    """

    def __init__(
        self, start: datetime, seconds_per_step: float | None, wall: Callable[[], datetime] = _wall_clock
    ) -> None:
        self.now = start
        self._step = None if seconds_per_step is None else timedelta(seconds=seconds_per_step)
        self._wall = wall

    @classmethod
    def real_time(cls, wall: Callable[[], datetime] = _wall_clock) -> BrokerClock:
        return cls(wall(), None, wall)

    @classmethod
    def starting_back(
        cls, steps: int, seconds_per_step: float, wall: Callable[[], datetime] = _wall_clock
    ) -> BrokerClock:
        """A clock that can run `steps` steps at full pace before it catches up with the real one."""
        return cls(wall() - timedelta(seconds=steps * seconds_per_step), seconds_per_step, wall)

    def tick(self) -> datetime:
        ahead = self._wall() if self._step is None else min(self.now + self._step, self._wall())
        self.now = max(self.now + timedelta(milliseconds=1), ahead)
        return self.now


# --- what a step reports ---------------------------------------------------------------------------


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


Note = Callable[[int | None, str], None]

BrokerFactory = Callable[[Market, random.Random], SimulatedBroker]
"""An account's broker on the simulation's market, drawing from its random generator."""


# --- the platform ----------------------------------------------------------------------------------


class SimulatedPlatform:
    """The signal platform: records each trade it sends an account as an expected trade (user JWT)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        *,
        renew_token: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self._http = http
        self._token = token
        self._renew_token = renew_token
        self._trade_numbers: dict[int, Iterator[int]] = defaultdict(lambda: itertools.count(1))

    def next_trade_id(self, account_id: int) -> str:
        return f"sim-{account_id}-{next(self._trade_numbers[account_id]):05d}"

    async def record(self, account_id: int, order: Order, opened_at: datetime) -> None:
        """Raises BridgeError when tradeguard refuses the trade."""
        body = {
            "trade_id": order.trade_id,
            "symbol": order.symbol,
            "side": order.side.value,
            "volume": order.volume,
            "entry_price": order.price,
            "opened_at": opened_at,
        }
        if order.stop_loss is not None:
            body["stop_loss"] = order.stop_loss
        if order.take_profit is not None:
            body["take_profit"] = order.take_profit
        response = await self._request("POST", TRADES_PATH.format(account_id=account_id), body)
        _raise_for_status(response)

    async def trading_allowed(self, account_id: int) -> bool:
        """False once a guard halted the account: the platform then stops sending it trades.

        When the answer cannot be had, trading goes on: halting is tradeguard's decision, not ours.
        """
        try:
            response = await self._request("GET", f"{GUARD_STATUS_PATH}?account_id={account_id}")
            _raise_for_status(response)
            return bool(response.json().get("trading_allowed", True))
        except (BridgeError, httpx.HTTPError, ValueError) as exc:
            log.debug("guard status of account %s unavailable: %s", account_id, exc)
            return True

    async def reconciliation_status(self, account_id: int) -> dict[str, Any]:
        """What tradeguard made of the account's last snapshot. Raises BridgeError or httpx.HTTPError."""
        response = await self._request("GET", f"{RECONCILIATION_STATUS_PATH}?account_id={account_id}")
        _raise_for_status(response)
        return response.json()

    async def _request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        content = None if payload is None else encode_body(payload)
        response = await self._http.request(method, path, content=content, headers=self._headers())
        if response.status_code == 401 and self._renew_token is not None:
            # A demo outlives a token; sign in again once and retry.
            self._token = await self._renew_token()
            response = await self._http.request(method, path, content=content, headers=self._headers())
        return response

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise BridgeError(response.status_code, response.text[:300])


# --- the bridge ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloseOutcome:
    status: str
    detail: str | None = None
    close_price: Decimal | None = None
    profit: Decimal | None = None

    def acknowledgement_fields(self) -> dict[str, Any]:
        fields = {"detail": self.detail, "close_price": self.close_price, "profit": self.profit}
        return {name: value for name, value in fields.items() if value is not None}


# What a server answers when it lacks an endpoint (an older tradeguard): worth one warning, not one a step.
_ABSENT = (404, 405)


class SimulatedBridge:
    """An account's bridge: signed snapshots out, close commands in, acknowledgements out.

    Commands arrive at least once (in every snapshot answer and every poll until acknowledged), so
    each command id is carried out once and only its acknowledgement is repeated.
    """

    def __init__(self, account_id: int, broker: SimulatedBroker, client: BridgeClient, note: Note) -> None:
        self.account_id = account_id
        self.broker = broker
        self.last_summary: dict[str, Any] | None = None
        self.commands_executed = 0
        self._client = client
        self._note = note
        self._outcomes: dict[str, CloseOutcome] = {}
        self._acknowledged: set[str] = set()
        self._known_divergences: set[tuple] = set()
        self._warned: set[tuple[str, int]] = set()
        self._deals_reported = 0
        self._broker_time: datetime | None = None

    async def sync(self, taken_at: datetime) -> dict[str, Any]:
        """Send a snapshot, with the deals since the last one, and carry out the commands in the answer.

        Raises BridgeError or httpx.HTTPError.
        """
        self._broker_time = taken_at
        new_deals = self.broker.history[self._deals_reported :]
        self._deals_reported += len(new_deals)
        self._client.report_closed_deals(deal.as_closed_deal() for deal in new_deals)
        summary = await self._client.send_snapshot(self.broker.snapshot(taken_at))
        self.last_summary = summary
        self._note_new_divergences(summary.get("divergences", []))
        await self.carry_out(summary.get("commands", []))
        return summary

    async def poll(self) -> None:
        try:
            commands = await self._client.poll_commands()
        except BridgeError as exc:
            self._warn_unless_absent("poll", "polling commands", exc)
            return
        except httpx.HTTPError as exc:
            log.warning("account %s: polling commands failed: %s", self.account_id, exc)
            return
        await self.carry_out(commands)

    async def carry_out(self, commands: Sequence[Mapping[str, Any]]) -> None:
        for command in commands:
            command_id = str(command["command_id"])
            if command_id in self._acknowledged:
                continue
            outcome = self._outcomes.get(command_id)
            if outcome is None:
                outcome = self._outcomes[command_id] = self._execute(command)
            if await self._acknowledge(command_id, outcome):
                self._acknowledged.add(command_id)

    def _execute(self, command: Mapping[str, Any]) -> CloseOutcome:
        ticket = str(command["ticket"])
        if ticket not in self.broker.positions:
            # Already gone (a stop hit first, or never ours): the broker refuses; the snapshot shows why.
            return CloseOutcome("failed", detail=f"ticket {ticket} is not open on the broker")
        volume = Decimal(str(command["volume"])) if command.get("volume") is not None else None
        # Carried out right after the snapshot whose answer (or the poll after it) brought the command.
        at = self._broker_time or _wall_clock()
        closed = self.broker.close(ticket, volume, reason=CloseReason.CLOSE_COMMAND, at=at)
        self.commands_executed += 1
        self._note(
            self.account_id,
            f"closed {closed.symbol} {closed.side.value} {closed.volume} (ticket {ticket}) on a "
            f"{command.get('cause', 'guard')} command at {closed.close_price}, P&L {closed.profit}",
        )
        return CloseOutcome("executed", close_price=closed.close_price, profit=closed.profit)

    async def _acknowledge(self, command_id: str, outcome: CloseOutcome) -> bool:
        """True once tradeguard has the acknowledgement, so it need not be sent again."""
        try:
            await self._client.acknowledge(command_id, outcome.status, **outcome.acknowledgement_fields())
        except BridgeError as exc:
            if exc.status_code == 409:
                # Already acknowledged (an earlier attempt whose answer was lost): nothing left to say.
                return True
            self._warn_unless_absent("ack", f"acknowledging command {command_id}", exc)
            return False
        except httpx.HTTPError as exc:
            # The acknowledgement may or may not have arrived; the command comes again if it did not.
            log.warning("account %s: acknowledging command %s failed: %s", self.account_id, command_id, exc)
            return False
        return True

    def _warn_unless_absent(self, endpoint: str, what: str, exc: BridgeError) -> None:
        if exc.status_code not in _ABSENT:
            log.warning("account %s: %s refused: %s", self.account_id, what, exc)
            return
        if (endpoint, exc.status_code) not in self._warned:
            self._warned.add((endpoint, exc.status_code))
            log.warning(
                "account %s: %s answered %s (a server without this endpoint, or a command it does not "
                "know); carrying on, and not repeating this warning",
                self.account_id,
                what,
                exc.status_code,
            )

    def _note_new_divergences(self, divergences: Sequence[Mapping[str, Any]]) -> None:
        current = {}
        for divergence in divergences:
            key = (divergence.get("trade_id"), divergence.get("ticket"), tuple(divergence.get("reasons", ())))
            current[key] = divergence
        for key, divergence in current.items():
            if key not in self._known_divergences:
                reasons = ", ".join(divergence.get("reasons", ()))
                self._note(self.account_id, f"tradeguard: {reasons}: {divergence.get('message', '')}")
        self._known_divergences = set(current)


class ReportedElsewhere:
    """An account a bridge outside the simulation reports (a `tradeguard bridge` process reading
    the account's terminal): the simulation sends it nothing, and reads what tradeguard made of it."""

    def __init__(
        self, account_id: int, broker: SimulatedBroker, platform: SimulatedPlatform, note: Note
    ) -> None:
        self.account_id = account_id
        self.broker = broker
        self.last_summary: dict[str, Any] | None = None
        self._platform = platform
        self._note = note
        self._events_seen: set[int] = set()

    @property
    def commands_executed(self) -> int:
        return sum(1 for deal in self.broker.history if deal.reason is CloseReason.CLOSE_COMMAND)

    async def sync(self, taken_at: datetime) -> dict[str, Any]:
        """Raises BridgeError or httpx.HTTPError."""
        self.last_summary = await self._platform.reconciliation_status(self.account_id)
        for event in reversed(self.last_summary.get("recent_events", [])):
            if event["event_type"] == "divergence" and event["id"] not in self._events_seen:
                self._note(self.account_id, f"tradeguard: {event['reason']}: {event['message']}")
            self._events_seen.add(event["id"])
        return self.last_summary

    async def poll(self) -> None:
        """The bridge polls for its commands itself."""


# --- the scenario ----------------------------------------------------------------------------------


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


# --- the simulation --------------------------------------------------------------------------------


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
