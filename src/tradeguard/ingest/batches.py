"""Group commit: the snapshots that arrive together are applied together, in one transaction.

A process keeps one queue of admitted snapshots and applies them batch by batch, in arrival order:
the first snapshot to find no batch forming waits at most `window` seconds for others (or until
`max_size` are queued), and the snapshots arriving while a batch is applied form the next. Under
load a batch therefore grows by itself to what arrived while the last one was being applied.

Up to `in_flight` batches are applied at once. The next batch starts as soon as the one before it
says it holds what keeps it ahead (`Turn.let_next_start`: for snapshots, the account rows it locked)
or has ended, whichever comes first, and a free slot; so a batch waiting on the database no
longer keeps the process idle. What must stay in batch order after that, `apply` orders itself by
waiting for the batch before it to end (`Turn.previous_ended`). With `in_flight=1` a batch starts
only when the one before it has ended. Each waiter is answered with its own item's result by its
batch; one that `apply` leaves unanswered gets what escaped it, or is cancelled with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(eq=False, slots=True)
class Queued(Generic[Item, Result]):
    """An item waiting for its batch, and where its answer goes."""

    item: Item
    answer: asyncio.Future[Result] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def answer_with(self, result: Result) -> None:
        """Answer the waiter, unless it is gone: its request was cancelled (the bridge hung up), and
        the item was applied all the same."""
        if not self.answer.done():
            self.answer.set_result(result)

    def fail_with(self, error: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


class Turn:
    """A batch's place among the batches in flight: when the next may start, and what it waits for."""

    def __init__(self, previous: Turn | None) -> None:
        self._previous = previous
        self._next_may_start = asyncio.Event()
        self._ended = asyncio.Event()

    def let_next_start(self) -> None:
        """This batch holds what keeps it ahead of the next one: the next may start now."""
        self._next_may_start.set()

    async def previous_ended(self) -> None:
        """Returns once the batch before this one has ended, however it ended."""
        if self._previous is not None:
            await self._previous._ended.wait()

    def _end(self) -> None:
        # The batches that ended are forgotten, so the chain is never longer than those in flight.
        self._previous = None
        self._next_may_start.set()
        self._ended.set()


class Batches(Generic[Item, Result]):
    """Applies queued items batch by batch with `apply`, which answers each `Queued` of its batch."""

    def __init__(
        self,
        apply: Callable[[list[Queued[Item, Result]], Turn], Awaitable[None]],
        *,
        window: float,
        max_size: int,
        in_flight: int = 1,
    ) -> None:
        self._apply = apply
        self._window = window
        self._max_size = max_size
        self._queue: list[Queued[Item, Result]] = []
        self._full = asyncio.Event()
        self._draining: asyncio.Task | None = None
        self._slots = asyncio.Semaphore(in_flight)
        self._last: Turn | None = None
        self._applying: set[asyncio.Task] = set()

    async def submit(self, item: Item) -> Result:
        queued = Queued[Item, Result](item)
        self._queue.append(queued)
        if len(self._queue) >= self._max_size:
            self._full.set()
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await queued.answer

    async def _drain(self) -> None:
        try:
            if self._window > 0 and len(self._queue) < self._max_size:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._window)
            while self._queue:
                await self._next_may_start()
                batch, self._queue = self._queue[: self._max_size], self._queue[self._max_size :]
                turn = Turn(self._last)
                self._last = turn
                applying = asyncio.create_task(self._apply_in_turn(batch, turn))
                self._applying.add(applying)
                applying.add_done_callback(self._applying.discard)
        except asyncio.CancelledError:
            for queued in self._queue:
                queued.answer.cancel()
            self._queue = []
            raise
        finally:
            self._draining = None

    async def _next_may_start(self) -> None:
        """Holds a slot once the last batch started lets the next one start."""
        await self._slots.acquire()
        try:
            if self._last is not None:
                await self._last._next_may_start.wait()
        except BaseException:
            self._slots.release()
            raise

    async def _apply_in_turn(self, batch: list[Queued[Item, Result]], turn: Turn) -> None:
        try:
            await self._apply(batch, turn)
        except asyncio.CancelledError:
            for queued in batch:
                queued.answer.cancel()
            raise
        except Exception as error:
            # `apply` answers every item itself; what escapes it goes to the batch's waiters
            # rather than ending the queue for the batches after it.
            _fail_unanswered(batch, error)
        finally:
            turn._end()
            self._slots.release()


def _fail_unanswered(batch: list[Queued], error: Exception) -> None:
    for queued in batch:
        if not queued.answer.done():
            queued.answer.set_exception(error)
