"""The live stream (server-sent events) of the accounts a user may see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from tradeguard.api.deps import ServicesDep, verified_principal
from tradeguard.api.params import MAX_ID
from tradeguard.auth.tokens import Principal
from tradeguard.errors import NotAuthenticated, NotFound
from tradeguard.stream.bus import StreamEvent, Subscription
from tradeguard.stream.replay import stream_accounts, stream_start
from tradeguard.values import BigInt

router = APIRouter(tags=["stream"])

KEEPALIVE_SECONDS = 15.0


def _bearer(request: Request, access_token: str | None) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    if access_token:
        return access_token
    raise NotAuthenticated("not authenticated")


def sse(event: StreamEvent) -> bytes:
    head = f"event: {event.kind}\n" + (f"id: {event.event_id}\n" if event.event_id is not None else "")
    return head.encode() + b"data: " + event.data + b"\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "hello, sync, log and alert events"}
    },
)
async def stream(
    request: Request,
    services: ServicesDep,
    account_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="One account; without it, all the caller's own.")
    ] = None,
    access_token: Annotated[
        str | None, Query(description="For EventSource, which cannot send headers.")
    ] = None,
    last_event_id: Annotated[BigInt | None, Header(alias="Last-Event-ID")] = None,
):
    """Events as they happen. With `Last-Event-ID`, what happened since that id is sent first."""
    principal = await verified_principal(services, _bearer(request, access_token))
    account_ids = await stream_accounts(services.reads, services.sessions, principal, account_id)
    return await _open_stream(services, principal, account_ids, last_event_id)


@router.get(
    "/platform/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "hello, then every account's sync, log and alert events",
        },
        404: {"description": "the caller is not the platform's operator (owner or admin)"},
    },
)
async def platform_stream(
    request: Request,
    services: ServicesDep,
    access_token: Annotated[
        str | None, Query(description="For EventSource, which cannot send headers.")
    ] = None,
    last_event_id: Annotated[BigInt | None, Header(alias="Last-Event-ID")] = None,
):
    """Every account's events on one connection, for the platform's operator; resumable with
    `Last-Event-ID` as the account stream is. It opens without the accounts' states: read those
    from the platform's views."""
    principal = await verified_principal(services, _bearer(request, access_token))
    if not principal.sees_every_account:
        raise NotFound("no platform stream")
    return await _open_stream(services, principal, None, last_event_id)


async def _open_stream(
    services: ServicesDep, principal: Principal, account_ids: list[int] | None, last_event_id: int | None
) -> StreamingResponse:
    subscription = services.bus.subscribe(account_ids)
    try:
        opening = await stream_start(services.sessions, principal, account_ids, last_event_id)
    except BaseException:
        subscription.close()
        raise
    return StreamingResponse(
        _events(subscription, opening),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(subscription: Subscription, opening: list[StreamEvent]) -> AsyncIterator[bytes]:
    """Subscribed before the replay was read, so nothing falls between; ids already sent are skipped."""
    sent_up_to = 0
    try:
        for event in opening:
            yield sse(event)
            sent_up_to = max(sent_up_to, event.event_id or 0)
        while not subscription.ended and (not subscription.overflowed or not subscription.queue.empty()):
            try:
                event = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if subscription.ended:
                break
            if event.event_id is not None and event.event_id <= sent_up_to:
                continue
            yield sse(event)
    finally:
        subscription.close()
