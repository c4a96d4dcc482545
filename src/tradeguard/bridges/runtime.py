"""The loop every bridge runs, whatever the platform: read the broker, report, carry out close commands.

One loop per binding, all over one HTTP client. Each binding's broker is called from one thread
of its own, one call at a time (the MetaTrader5 package and ccxt's synchronous client are not
safe to share between threads). A loop never sends a snapshot the broker did not confirm, begins
a journal entry before asking the broker to close, and survives tradeguard's absences by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from tradeguard.bridges.broker import Binding, BrokerUnavailable, CloseOrder, CloseOutcome, ReadFailed
from tradeguard.bridges.client import BridgeClient, BridgeError
from tradeguard.bridges.config import BridgeFile, BridgeTimings, ConfigError
from tradeguard.bridges.journal import Journal
from tradeguard.ingest.signature import HEADER_TIMESTAMP

T = TypeVar("T")

log = logging.getLogger("tradeguard.bridge")

FIRST_BACKOFF_SECONDS = 1.0
CLOCK_TOLERANCE_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 10.0
KEEPALIVE_SECONDS = 4.0
"""Below uvicorn's 5 s: a connection the bridge reuses is never one the server is just closing
(a snapshot every 5 s over a connection kept 5 s would meet that moment and read an outage)."""


class BridgeRefused(Exception):
    """tradeguard refuses the device's credentials: nothing this process can fix by retrying."""


class ServerClock:
    """The local clock corrected by tradeguard's, read from the `Date` header of its answers.

    The header has whole seconds only, so the correction changes only when the corrected clock
    is more than a couple of seconds off: consecutive snapshot times do not jitter, and a clock
    kept right by NTP is left alone.
    """

    def __init__(self, local: Callable[[], float]) -> None:
        self._local = local
        self.offset = 0.0

    def __call__(self) -> float:
        return self._local() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)

    def observe(self, response: httpx.Response) -> None:
        date = response.headers.get("Date")
        if not date:
            return
        try:
            # The server's time lies somewhere within the second the header names.
            server = parsedate_to_datetime(date).timestamp() + 0.5
        except (TypeError, ValueError):
            return
        measured = server - self._local()
        if abs(measured - self.offset) > CLOCK_TOLERANCE_SECONDS:
            log.warning(
                "the local clock is %+.0f s off tradeguard's; correcting it by %+.0f s (was %+.0f s)",
                -measured,
                measured,
                self.offset,
            )
            self.offset = measured


class _AnsweringClient(BridgeClient):
    """A BridgeClient that keeps the last answer's headers, for the clock and Retry-After."""

    def __init__(self, http: httpx.AsyncClient, clock: ServerClock, **credentials: Any) -> None:
        super().__init__(http, clock=clock, **credentials)
        self._server_clock = clock
        self.last_response: httpx.Response | None = None

    async def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        self.last_response = None
        response = await super().request(method, path, payload)
        self.last_response = response
        self._server_clock.observe(response)
        return response


class _OnceLogger:
    """A warning when the reason changes, not at every attempt."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def problem(self, reason: str, message: str, *args: Any, exc_info: bool = False) -> None:
        if reason != self.reason:
            log.warning(message, *args, exc_info=exc_info)
            self.reason = reason

    def cleared(self, message: str, *args: Any) -> None:
        if self.reason is not None:
            log.info(message, *args)
            self.reason = None


class _BindingLoop:
    def __init__(
        self,
        binding: Binding,
        http: httpx.AsyncClient,
        journal: Journal,
        timings: BridgeTimings,
        clock: ServerClock,
        stop: asyncio.Event,
    ) -> None:
        self.binding = binding
        self._broker = binding.broker
        self._journal = journal
        self._timings = timings
        self._clock = clock
        self._stop = stop
        self._client = _AnsweringClient(
            http, clock, device_id=binding.device.device_id, secret=binding.device.secret
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"broker-{binding.name}")
        self._loop = asyncio.get_running_loop()
        self._accepted = False
        self._failures = 0
        self._retry_at = 0.0
        self._away_since: float | None = None
        self._read_problem = _OnceLogger()
        self._last_sent: tuple[frozenset, Decimal, float] | None = None

    def _say(self, message: str) -> str:
        return f"{self.binding.name}: {message}"

    async def run(self) -> None:
        try:
            if await self._connect():
                try:
                    await self._work()
                finally:
                    await self._disconnect()
        finally:
            self._executor.shutdown(wait=False)

    async def _disconnect(self) -> None:
        try:
            await self._on_broker(self._broker.disconnect)
        except Exception:
            log.exception(self._say("disconnecting from the broker failed"))

    async def _on_broker(self, call: Callable[..., T], *args: Any) -> T:
        return await self._loop.run_in_executor(self._executor, call, *args)

    async def _connect(self) -> bool:
        """Connected, or False when stopped first."""
        attempts = 0
        waiting = _OnceLogger()
        while not self._stop.is_set():
            try:
                await self._on_broker(self._broker.connect)
            except BrokerUnavailable as error:
                waiting.problem(str(error), self._say("broker unavailable (%s); retrying"), error)
                await self._sleep(_backoff(attempts, self._timings.max_backoff_seconds))
                attempts += 1
                continue
            except ValueError as error:
                raise ConfigError(f"{self.binding.name}: {error}") from error
            log.info(self._say("connected to %s"), self._broker.description)
            return True
        return False

    async def _work(self) -> None:
        # The first poll checks the credentials: no snapshot goes out before tradeguard accepts them.
        next_read = next_poll = self._loop.time()
        while not self._stop.is_set():
            if self._loop.time() >= max(next_poll, self._retry_at):
                next_poll = self._loop.time() + self._timings.command_poll_seconds
                _, commands = await self._ask(self._client.poll_commands, "a poll for commands")
                await self._carry_out(commands or ())
            if self._loop.time() >= next_read:
                next_read = self._loop.time() + self._timings.read_seconds
                await self._read_and_report()
            await self._sleep(min(next_read, max(next_poll, self._retry_at)) - self._loop.time())

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    async def _read_and_report(self) -> None:
        now = self._clock.now()
        try:
            reading = await self._on_broker(self._broker.read, now)
        except ReadFailed as error:
            self._read_problem.problem(
                str(error), self._say("broker read failed, no snapshot sent: %s"), error
            )
            return
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            self._read_problem.problem(
                reason, self._say("broker read failed, no snapshot sent: %s"), reason, exc_info=True
            )
            return
        self._read_problem.cleared(self._say("broker reads again"))
        # Deals are found once, at the reading that sees them: keep them for the snapshots to come.
        self._client.report_closed_deals(reading.closed_deals)
        snapshot = {**reading.snapshot, "taken_at": now}
        if not self._accepted or self._loop.time() < self._retry_at or not self._snapshot_due(snapshot):
            return
        sent = (_positions(snapshot), Decimal(str(snapshot["equity"])), self._loop.time())
        answered, answer = await self._ask(lambda: self._client.send_snapshot(snapshot), "a snapshot")
        if answered:
            # Refused too: the same snapshot is not sent again before the next change or cadence.
            self._last_sent = sent
        if answer is not None:
            await self._carry_out(answer.get("commands", ()))

    def _snapshot_due(self, snapshot: dict) -> bool:
        if self._last_sent is None:
            return True
        positions, equity, sent_at = self._last_sent
        if _positions(snapshot) != positions:
            return True
        if self._loop.time() - sent_at >= self._timings.snapshot_seconds:
            return True
        moved = abs(Decimal(str(snapshot["equity"])) - equity) * 100
        return moved > Decimal(str(self._timings.equity_change_percent)) * abs(equity)

    async def _ask(self, call: Callable[[], Awaitable[T]], doing: str) -> tuple[bool, T | None]:
        """Whether tradeguard answered, and its answer when it granted the request.

        Not answered (unreachable, 5xx): the next attempt waits for the backoff. Answered but
        refused (4xx): logged, None. A refused device raises `BridgeRefused`.
        """
        first_attempt = True
        while True:
            try:
                result = await call()
            except httpx.TransportError as error:
                self._away(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
                return False, None
            except BridgeError as error:
                if error.status_code >= 500:
                    self._away(str(error), _retry_after(self._client.last_response))
                    return False, None
                self._reachable()
                if error.status_code != 401:
                    log.error(self._say("tradeguard refused %s: %s"), doing, error)
                    return True, None
                if not error.detail.startswith(HEADER_TIMESTAMP):
                    raise self._refusal(error.detail) from error
                if first_attempt:
                    # The answer's Date header has just corrected the clock: a new signature will do.
                    first_attempt = False
                    continue
                self._away(str(error))
                return False, None
            self._reachable()
            if not self._accepted:
                log.info(self._say("tradeguard accepts device %s"), self.binding.device.device_id)
                self._accepted = True
            return True, result

    def _refusal(self, detail: str) -> BridgeRefused:
        device = f"device {self.binding.device.device_id} ({self.binding.name})"
        if self._accepted:
            return BridgeRefused(f"tradeguard no longer accepts {device}, revoked?: {detail}")
        return BridgeRefused(f"tradeguard refused {device}: {detail}")

    def _away(self, reason: str, retry_after: float | None = None) -> None:
        now = self._loop.time()
        if self._away_since is None:
            self._away_since = now
            log.warning(self._say("tradeguard unreachable (%s); retrying"), reason)
        delay = _backoff(self._failures, self._timings.max_backoff_seconds)
        self._failures += 1
        self._retry_at = now + (retry_after if retry_after is not None else delay)

    def _reachable(self) -> None:
        if self._away_since is not None:
            log.warning(
                self._say("tradeguard reachable again after %.1f s"), self._loop.time() - self._away_since
            )
            self._away_since = None
        self._failures = 0
        self._retry_at = 0.0

    async def _carry_out(self, commands: Sequence[dict]) -> None:
        for command in commands:
            await self._carry_out_one(command)

    async def _carry_out_one(self, command: dict) -> None:
        name = self.binding.name
        order = CloseOrder(
            command_id=command["command_id"],
            ticket=str(command["ticket"]),
            symbol=command["symbol"],
            volume=Decimal(str(command["volume"])),
        )
        entry = self._journal.entry(name, order.command_id)
        if entry is not None and entry.acknowledged_at is not None:
            return
        if entry is not None and entry.outcome is not None:
            outcome = entry.outcome
            log.info(
                self._say("command %s comes again: acknowledging %s again"), order.command_id, outcome.status
            )
        else:
            outcome = await self._outcome(order, begun=entry is not None)
            if outcome is None:
                return
            self._journal.record(name, order.command_id, outcome, self._clock.now())
        await self._acknowledge(order, outcome)

    async def _outcome(self, order: CloseOrder, *, begun: bool) -> CloseOutcome | None:
        """What the broker did with the order; None when it could not say (the entry stays begun,
        and the next delivery of the command settles it by looking)."""
        try:
            if begun:
                log.warning(
                    self._say(
                        "command %s for ticket %s may have reached the broker unrecorded; settling it by looking"
                    ),
                    order.command_id,
                    order.ticket,
                )
                outcome = await self._on_broker(self._broker.settle, order)
            else:
                earlier = self._journal.unsettled(self.binding.name, order.ticket)
                self._journal.begin(self.binding.name, order, self._clock.now())
                log.info(
                    self._say("closing ticket %s (%s %s) for command %s"),
                    order.ticket,
                    order.volume,
                    order.symbol,
                    order.command_id,
                )
                outcome = await self._on_broker(self._broker.close, order, earlier)
        except Exception:
            log.exception(self._say("command %s: the broker did not say what came of it"), order.command_id)
            return None
        log.info(self._say("command %s: %s %s"), order.command_id, outcome.status, outcome.detail)
        return outcome

    async def _acknowledge(self, order: CloseOrder, outcome: CloseOutcome) -> None:
        answered, _ = await self._ask(
            lambda: self._client.acknowledge(order.command_id, **outcome.acknowledgement()),
            f"the acknowledgement of command {order.command_id} (not retried)",
        )
        # Refused too (409: tradeguard settled it otherwise; 404: not this account's): retrying cannot help.
        if answered:
            self._journal.mark_acknowledged(self.binding.name, order.command_id, self._clock.now())


def _positions(snapshot: dict) -> frozenset:
    return frozenset(
        (str(position["ticket"]), Decimal(str(position["volume"])).normalize())
        for position in snapshot.get("positions", ())
    )


def _backoff(failures: int, cap: float) -> float:
    ceiling = min(cap, FIRST_BACKOFF_SECONDS * 2**failures)
    return random.uniform(ceiling / 2, ceiling)


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None or response.status_code != 503:
        return None
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


async def run_bridges(
    file: BridgeFile,
    bindings: Sequence[Binding],
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Run every binding until `stop` is set.

    A device tradeguard refuses (at start: wrong id or secret; later: revoked) stops every
    loop and raises `BridgeRefused`; a broker configuration the adapter refuses raises `ConfigError`.
    """
    names = [binding.name for binding in bindings]
    if len(set(names)) != len(names):
        raise ConfigError(f"{file.path}: binding names must be unique, not {names}")
    stop = stop or asyncio.Event()
    server_clock = ServerClock(clock)
    try:
        journal = Journal(file.journal_path)
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(
            f"{file.path}: bridge.journal {file.journal_path} cannot be opened: {error}"
        ) from None
    pruned = journal.prune(server_clock.now())
    if pruned:
        log.info("forgot %d acknowledged commands older than a week", pruned)
    fatal: list[BaseException] = []

    async def run_one(loop: _BindingLoop) -> None:
        try:
            await loop.run()
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            fatal.append(error)
            stop.set()
            log.error("%s: stopped: %s: %s", loop.binding.name, type(error).__name__, error)

    try:
        async with httpx.AsyncClient(
            base_url=file.url,
            timeout=REQUEST_TIMEOUT_SECONDS,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        ) as http:
            loops = [
                _BindingLoop(binding, http, journal, file.timings, server_clock, stop) for binding in bindings
            ]
            await asyncio.gather(*(run_one(loop) for loop in loops))
    finally:
        journal.close()
    if fatal:
        raise fatal[0]
