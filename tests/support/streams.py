"""Reading a served app's live stream: server-sent events from an open response, one at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson


@dataclass
class Received:
    kind: str
    data: dict
    event_id: int | None


class EventReader:
    """Reads server-sent events from an open response into a queue."""

    def __init__(self, response: httpx.Response) -> None:
        self.events: asyncio.Queue[Received] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(response))

    async def _read(self, response: httpx.Response) -> None:
        kind, data, event_id = None, None, None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("id: "):
                event_id = int(line.removeprefix("id: "))
            elif line.startswith("data: "):
                data = orjson.loads(line.removeprefix("data: "))
            elif line == "" and kind is not None:
                await self.events.put(Received(kind, data, event_id))
                kind, data, event_id = None, None, None

    @property
    def ended(self) -> bool:
        """Whether the server ended the stream and every event it sent has been taken."""
        return self._task.done() and self.events.empty()

    async def next(self, kind: str | None = None, *, matching=lambda event: True) -> Received:
        """The next event of that kind (others are skipped); a 10 s guard keeps a broken stream from hanging."""
        while True:
            event = await asyncio.wait_for(self.events.get(), timeout=10)
            if (kind is None or event.kind == kind) and matching(event):
                return event

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, token: str, path: str = "/api/v1/stream", **headers
) -> AsyncIterator[EventReader]:
    request_headers = {"Authorization": f"Bearer {token}", **headers}
    async with http.stream("GET", path, headers=request_headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        try:
            yield reader
        finally:
            await reader.close()
