"""A local HTTP endpoint that records requests and answers from a script: the far side of notifiers."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus

import orjson

from tests.support.net import free_port


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return orjson.loads(self.body)


class Receiver:
    """A local HTTP/1.1 endpoint that records every request and answers from a script, then a default."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.released = asyncio.Event()
        self.port = free_port()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.released.set()
        self._server.close()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, target, _ = (await reader.readline()).decode().split(" ", 2)
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, target, headers, body))
            reply = self.script.popleft() if self.script else self.default
            if reply.hang_seconds:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.released.wait(), reply.hang_seconds)
            head = [
                f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}",
                "Content-Type: application/json",
                f"Content-Length: {len(reply.body)}",
                "Connection: close",
                *(f"{name}: {value}" for name, value in reply.headers.items()),
            ]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
            await writer.drain()
        finally:
            writer.close()
