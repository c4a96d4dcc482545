"""tradeguard's app with a stopwatch for the breach benchmark, changing nothing it does.

Every request gets two answer headers, both on the server's monotonic clock from the moment the
ASGI app is called (the request's arrival, once uvicorn has parsed its head):

- `x-bench-commit-ms`: until the last database COMMIT of the request returned, i.e. until the
  close commands the ingest step inserted exist for every other connection;
- `x-bench-app-ms`: until the answer's head is sent;
- `x-bench-statements`: how many SQL statements the request sent (a SQLAlchemy cursor-execute
  hook; an executemany counts once); for a snapshot applied in a batch, the whole batch's;
- `x-bench-batch`: for a snapshot, how many snapshots its batch applied together.

It wraps `AsyncSession.commit` to note the time in a per-request slot (a context variable holding
a dict, so the note reaches the middleware whatever task the commit ran in). A batch of snapshots
is committed by a task of the queue's, not by the requests' own tasks, so the snapshots'
slots are remembered as they are queued and the batch's commit is noted in each of them. Used
only by the benchmarks; the product's code is untouched.
"""

from __future__ import annotations

import contextvars
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.app import create_app as create_tradeguard_app
from tradeguard.ingest import batches, step

_marks: contextvars.ContextVar[dict | BatchMarks | None] = contextvars.ContextVar("bench_marks", default=None)
_original_commit = AsyncSession.commit
_original_submit = batches.Batches.submit
_original_apply_batch = step.apply_batch
_marks_of_queued: dict[int, dict] = {}
"""The slot of each snapshot waiting in a batch queue, by the id of what it queued."""


class BatchMarks:
    """The slots of a batch's requests: what is noted goes to each of them."""

    def __init__(self, members: list[dict], size: int) -> None:
        self._members = members
        self._noted: dict = {}
        for member in members:
            member["batch"] = size

    def get(self, key, default=None):
        return self._noted.get(key, default)

    def __setitem__(self, key, value) -> None:
        self._noted[key] = value
        for member in self._members:
            member[key] = value


async def _noted_submit(self, item):
    marks = _marks.get()
    if isinstance(marks, dict):
        _marks_of_queued[id(item)] = marks
    try:
        return await _original_submit(self, item)
    finally:
        _marks_of_queued.pop(id(item), None)


async def _timed_apply_batch(services, batch, turn) -> None:
    members = [marks for queued in batch if (marks := _marks_of_queued.get(id(queued.item))) is not None]
    token = _marks.set(BatchMarks(members, len(batch)))
    try:
        await _original_apply_batch(services, batch, turn)
    finally:
        _marks.reset(token)


async def _timed_commit(self: AsyncSession) -> None:
    await _original_commit(self)
    marks = _marks.get()
    if marks is not None:
        marks["committed"] = time.perf_counter()


def _count_statement(*_args, **_kwargs) -> None:
    marks = _marks.get()
    if marks is not None:
        marks["statements"] = marks.get("statements", 0) + 1


class Stopwatch:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        marks = {"arrived": time.perf_counter()}
        _marks.set(marks)

        async def timed_send(message) -> None:
            if message["type"] == "http.response.start":
                now = time.perf_counter()
                extra = [(b"x-bench-app-ms", b"%.3f" % ((now - marks["arrived"]) * 1000))]
                extra.append((b"x-bench-statements", b"%d" % marks.get("statements", 0)))
                if "batch" in marks:
                    extra.append((b"x-bench-batch", b"%d" % marks["batch"]))
                if "committed" in marks:
                    extra.append(
                        (b"x-bench-commit-ms", b"%.3f" % ((marks["committed"] - marks["arrived"]) * 1000))
                    )
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, timed_send)


def create_app():
    AsyncSession.commit = _timed_commit
    batches.Batches.submit = _noted_submit
    step.apply_batch = _timed_apply_batch
    event.listen(Engine, "before_cursor_execute", _count_statement)
    return Stopwatch(create_tradeguard_app())
