"""The queue that forms ingest batches: arrival order, the size bound, the next batch formed while
one is applied, a failure kept to its own batch, and batches in flight together: when the next one
starts, how many at once, the order they end in, and every waiter answered or cancelled. No
database: `apply` is the test's own."""

from __future__ import annotations

import asyncio

import pytest

from tradeguard.ingest.batches import Batches, Queued, Turn


class Recorder:
    """Answers each item with itself and records the batches; `hold` keeps a batch from ending."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.applying = asyncio.Event()

    async def apply(self, batch: list[Queued[str, str]], turn: Turn) -> None:
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


class Stepped:
    """An `apply` the test steps through: each batch lets the next one start, then waits until the
    test finishes it, then for the batch before it to end, then answers; a "poison" item raises."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self._finish: dict[str, asyncio.Event] = {}

    def finish(self, name: str) -> None:
        self._finish.setdefault(name, asyncio.Event()).set()

    async def apply(self, batch: list[Queued[str, str]], turn: Turn) -> None:
        name = "+".join(queued.item for queued in batch)
        self.log.append(f"start {name}")
        turn.let_next_start()
        await self._finish.setdefault(name, asyncio.Event()).wait()
        if "poison" in name:
            raise RuntimeError("poisoned batch")
        await turn.previous_ended()
        self.log.append(f"end {name}")
        for queued in batch:
            queued.answer.set_result(queued.item.upper())


async def _settle() -> None:
    """Lets every task that can go on without the test, go on (nothing here waits on I/O)."""
    for _ in range(50):
        await asyncio.sleep(0)


def _submit_each(batches: Batches, items: str) -> list[asyncio.Future]:
    return [asyncio.ensure_future(batches.submit(item)) for item in items]


async def test_the_next_batch_starts_once_the_one_before_lets_it_and_ends_after_it():
    stepped = Stepped()
    batches = Batches(stepped.apply, window=0, max_size=1, in_flight=2)
    answers = _submit_each(batches, "ab")
    await _settle()
    assert stepped.log == ["start a", "start b"]

    stepped.finish("b")
    await _settle()
    assert stepped.log == ["start a", "start b"]
    assert not answers[1].done()

    stepped.finish("a")
    assert [await answer for answer in answers] == ["A", "B"]
    assert stepped.log == ["start a", "start b", "end a", "end b"]


async def test_with_one_batch_in_flight_the_next_starts_only_once_the_one_before_has_ended():
    stepped = Stepped()
    batches = Batches(stepped.apply, window=0, max_size=1, in_flight=1)
    answers = _submit_each(batches, "ab")
    await _settle()
    assert stepped.log == ["start a"]

    stepped.finish("a")
    stepped.finish("b")

    assert [await answer for answer in answers] == ["A", "B"]
    assert stepped.log == ["start a", "end a", "start b", "end b"]


async def test_no_more_batches_than_in_flight_are_applied_at_once():
    stepped = Stepped()
    batches = Batches(stepped.apply, window=0, max_size=1, in_flight=2)
    answers = _submit_each(batches, "abc")
    await _settle()
    assert stepped.log == ["start a", "start b"]

    stepped.finish("a")
    await _settle()
    assert stepped.log == ["start a", "start b", "end a", "start c"]

    stepped.finish("b")
    stepped.finish("c")
    assert [await answer for answer in answers] == ["A", "B", "C"]


async def test_a_batch_failing_after_the_next_started_fails_only_its_own_waiters_and_counts_as_ended():
    stepped = Stepped()
    batches = Batches(stepped.apply, window=0, max_size=2, in_flight=2)
    poisoned = _submit_each(batches, ["ok", "poison"])
    await _settle()
    after = _submit_each(batches, ["after"])
    await _settle()
    assert stepped.log == ["start ok+poison", "start after"]

    stepped.finish("after")
    stepped.finish("ok+poison")

    assert await after[0] == "AFTER"
    for answer in poisoned:
        with pytest.raises(RuntimeError, match="poisoned batch"):
            await answer
    assert stepped.log == ["start ok+poison", "start after", "end after"]


async def test_cancelling_the_queue_answers_or_cancels_every_waiter():
    stepped = Stepped()
    batches = Batches(stepped.apply, window=0, max_size=1, in_flight=2)
    answers = _submit_each(batches, "abcd")
    await _settle()
    stepped.finish("a")
    await _settle()
    assert stepped.log == ["start a", "start b", "end a", "start c"]

    # What a stopping event loop does: cancel every task, here the queue's own ones (its drain,
    # waiting to start "d", and the batches in flight, "b" and "c").
    for task in [batches._draining, *batches._applying]:
        task.cancel()
    outcomes = await asyncio.gather(*answers, return_exceptions=True)

    assert outcomes[0] == "A"
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes[1:])


async def test_a_waiter_that_went_away_leaves_the_answers_of_the_rest_of_its_batch():
    hung_up, waiting = Queued[str, str]("hung up"), Queued[str, str]("waiting")
    hung_up.answer.cancel()

    hung_up.answer_with("HUNG UP")
    waiting.answer_with("WAITING")
    hung_up.fail_with(RuntimeError("too late"))

    assert hung_up.answer.cancelled()
    assert await waiting.answer == "WAITING"
