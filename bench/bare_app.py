"""The baseline: a bare ASGI app answering a constant JSON body, no framework, no auth, no I/O.

Served by the same uvicorn command line as tradeguard, it is the ceiling for what the server,
the loop and the HTTP parser allow on this machine. `TG_BARE_SIZES="status=612,positions=4101"`
makes GET /status and GET /positions answer bodies of exactly those sizes (every other path
answers the first size), so each read endpoint is compared with a body as large as its own.

A POST's body is read to its end before the answer (a GET's empty one is not waited for, so the
read benchmarks measure what they always did): the ingest benchmarks compare tradeguard with an
app that receives the same signed snapshots and answers as many bytes, doing nothing else.
"""

from __future__ import annotations

import os


def constant_body(size: int) -> bytes:
    """A valid JSON object of exactly `size` bytes (at least 12)."""
    size = max(size, 12)
    return b'{"pad":"' + b"x" * (size - 10) + b'"}'


def _bodies() -> dict[bytes, bytes]:
    spec = os.environ.get("TG_BARE_SIZES", "default=600")
    bodies = {}
    for item in spec.split(","):
        name, _, size = item.partition("=")
        bodies[b"/" + name.strip().encode()] = constant_body(int(size))
    return bodies


_BODIES = _bodies()
_DEFAULT = next(iter(_BODIES.values()))
_HEADERS = {
    path: [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    for path, body in _BODIES.items()
}
_DEFAULT_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_DEFAULT)).encode())]


async def read_body(receive) -> bytes:
    """The request's whole body, however many messages the server splits it into."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["method"] == "POST":
        await read_body(receive)
    path = scope["path"].encode()
    body = _BODIES.get(path, _DEFAULT)
    headers = _HEADERS.get(path, _DEFAULT_HEADERS)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
