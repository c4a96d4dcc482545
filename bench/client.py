"""A small HTTP/1.1 keep-alive client for load generation.

On a 2-core machine the load generator competes with the server for CPU; httpx spends several
hundred microseconds of Python per request, this client a few tens. It speaks just enough HTTP
for tradeguard's answers: a status line, headers, and a Content-Length body.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class HTTPError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def host_header(host: str, port: int) -> bytes:
    return f"Host: {host}:{port}\r\n".encode()


class Connection:
    """One keep-alive connection; reopened when the server closes it (see `request`)."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._host_header = host_header(host, port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Answer:
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._host_header]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        return await self.send(b"".join(head) + body, f"{method} {path}")

    async def send(self, message: bytes, label: str = "request") -> Answer:
        """Write one complete request (head and body, built beforehand) and read its answer."""
        reused = self._writer is not None
        try:
            return await self._exchange(message)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            # uvicorn closes a keep-alive connection idle for 5 s; a request written just as it did
            # gets no byte back and was never read by the app. Send it once more on a new connection.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise HTTPError(f"{label}: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            await self.close()
            raise HTTPError(f"{label}: {type(exc).__name__}") from exc
        try:
            return await self._exchange(message)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
            await self.close()
            raise HTTPError(f"{label}: {type(exc).__name__} (after reconnecting)") from exc

    async def _exchange(self, message: bytes) -> Answer:
        if self._writer is None:
            await self._open()
        self._writer.write(message)
        return await asyncio.wait_for(self._read_answer(), self._timeout)

    async def _read_answer(self) -> Answer:
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            raise HTTPError("chunked answers are not supported by the bench client")
        length = int(headers.get("content-length", "0"))
        body = await self._reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, headers, body)


async def get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> Answer:
    """One request on a connection of its own."""
    connection = Connection(host, port)
    try:
        return await connection.request("GET", path, headers)
    finally:
        await connection.close()
