"""The queue that forms ingest batches: arrival order, the size bound, the next batch formed while
one is applied, and a failure kept to its own batch. No database: `apply` is the test's own."""

from __future__ import annotations

import asyncio

import pytest

from tradeguard.ingest.batches import Batches, Queued


class Recorder:
    """Answers each item with itself and records the batches; `hold` keeps a batch from ending."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.applying = asyncio.Event()

    async def apply(self, batch: list[Queued[str, str]]) -> None:
        self.batches.append([queued.item for queued in batch])
        self.applying.set()
        await self.hold.wait()
        for queued in batch:
            if queued.item == "poison":
                raise RuntimeError("poisoned batch")
            queued.answer.set_result(queued.item.upper())


async def test_items_submitted_together_are_applied_in_arrival_order_in_batches_of_at_most_max_size():
    recorder = Recorder()
    batches = Batches(recorder.apply, window=0, max_size=3)

    answers = await asyncio.gather(*(batches.submit(item) for item in "abcdefg"))

    assert answers == list("ABCDEFG")
    assert [item for batch in recorder.batches for item in batch] == list("abcdefg")
    assert all(len(batch) <= 3 for batch in recorder.batches)
    assert len(recorder.batches) == 3


async def test_items_arriving_while_a_batch_is_applied_form_the_next_batch():
    recorder = Recorder()
    recorder.hold.clear()
    batches = Batches(recorder.apply, window=0, max_size=10)
    first = asyncio.ensure_future(batches.submit("first"))
    await recorder.applying.wait()

    later = [asyncio.ensure_future(batches.submit(item)) for item in ("second", "third")]
    await asyncio.sleep(0)
    recorder.hold.set()

    assert await first == "FIRST"
    assert [await answer for answer in later] == ["SECOND", "THIRD"]
    assert recorder.batches == [["first"], ["second", "third"]]


async def test_a_full_batch_does_not_wait_for_its_window():
    recorder = Recorder()
    # A window no test could sit through: the batch starts because it is full.
    batches = Batches(recorder.apply, window=3600, max_size=2)

    answers = await asyncio.gather(batches.submit("a"), batches.submit("b"))

    assert answers == ["A", "B"]
    assert recorder.batches == [["a", "b"]]


async def test_what_escapes_a_batch_fails_its_own_waiters_and_the_next_batch_is_applied():
    recorder = Recorder()
    recorder.hold.clear()
    batches = Batches(recorder.apply, window=0, max_size=2)
    poisoned = [asyncio.ensure_future(batches.submit(item)) for item in ("ok", "poison")]
    await recorder.applying.wait()
    after = asyncio.ensure_future(batches.submit("after"))
    await asyncio.sleep(0)
    recorder.hold.set()

    assert await after == "AFTER"
    assert await poisoned[0] == "OK"
    with pytest.raises(RuntimeError, match="poisoned batch"):
        await poisoned[1]
    assert recorder.batches == [["ok", "poison"], ["after"]]
