"""Request bodies over the configured size are refused with 413 before the app holds them in memory."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from tradeguard.api.responses import json_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body without a declared length grows past the limit.

    An HTTPException, so that FastAPI's body reading passes it on instead of reporting a
    malformed body, and its handler answers JSON `{detail}`.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_detail(max_bytes))


def too_large_detail(max_bytes: int) -> str:
    return f"request body larger than {max_bytes} bytes (TRADEGUARD_MAX_BODY_BYTES)"


class BodyLimit:
    """A declared Content-Length over the limit is answered at once, the body never read; a body
    streamed without one (chunked) is counted as it arrives and cut off as soon as it passes the limit."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send) -> None:
        # The connection is not reused: the rest of the body is never read.
        response = json_response({"detail": too_large_detail(self.max_bytes)}, 413, {"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
