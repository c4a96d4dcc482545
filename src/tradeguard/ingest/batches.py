"""Group commit: the snapshots that arrive together are applied together, in one transaction.

A process keeps one queue of admitted snapshots and applies them one batch at a time, in arrival
order: the first snapshot to find no batch forming waits at most `window` seconds for others (or
until `max_size` are queued), and the snapshots arriving while a batch is applied form the next,
which starts as soon as that one ends. A later batch therefore never overtakes an earlier one, and
under load a batch grows by itself to what arrived while the last one was applied. Each waiter is
answered with its own item's result once its batch has ended.
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


class Batches(Generic[Item, Result]):
    """Applies queued items batch by batch with `apply`, which answers each `Queued` of its batch."""

    def __init__(
        self,
        apply: Callable[[list[Queued[Item, Result]]], Awaitable[None]],
        *,
        window: float,
        max_size: int,
    ) -> None:
        self._apply = apply
        self._window = window
        self._max_size = max_size
        self._queue: list[Queued[Item, Result]] = []
        self._full = asyncio.Event()
        self._draining: asyncio.Task | None = None

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
                batch, self._queue = self._queue[: self._max_size], self._queue[self._max_size :]
                try:
                    await self._apply(batch)
                except asyncio.CancelledError:
                    self._queue[:0] = batch
                    raise
                except Exception as error:
                    # `apply` answers every item itself; what escapes it goes to the batch's waiters
                    # rather than ending the queue for the batches after it.
                    _fail_unanswered(batch, error)
        except asyncio.CancelledError:
            for queued in self._queue:
                queued.answer.cancel()
            self._queue = []
            raise
        finally:
            self._draining = None


def _fail_unanswered(batch: list[Queued], error: Exception) -> None:
    for queued in batch:
        if not queued.answer.done():
            queued.answer.set_exception(error)
