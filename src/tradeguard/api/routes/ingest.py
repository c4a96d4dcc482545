"""The bridge side of the API: signed snapshots in; close commands out and acknowledged."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request

from tradeguard.api.deps import ServicesDep
from tradeguard.api.openapi import raw_json_body
from tradeguard.api.params import KeyPath
from tradeguard.api.responses import model_response
from tradeguard.api.schemas import CommandList, CommandOut, DivergenceOut, SyncSummary
from tradeguard.ingest import step
from tradeguard.ingest.authentication import SignedRequest
from tradeguard.ingest.signature import HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP
from tradeguard.ingest.snapshots import IngestOutcome
from tradeguard.ingest.validation import AcknowledgementIn, SnapshotIn
from tradeguard.store.models import CloseCommand

router = APIRouter(prefix="/ingest", tags=["ingest"])

SIGNED = {401: {"description": "missing, stale, replayed or wrong device signature"}}


async def signed_request(request: Request) -> SignedRequest:
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = request.headers
    return SignedRequest(
        method=request.method,
        path=request.scope["path"] + (f"?{query}" if query else ""),
        device_id=headers.get(HEADER_DEVICE),
        timestamp=headers.get(HEADER_TIMESTAMP),
        nonce=headers.get(HEADER_NONCE),
        signature=headers.get(HEADER_SIGNATURE),
        body=await request.body(),
    )


def command_out(command: CloseCommand) -> CommandOut:
    return CommandOut(
        command_id=command.id,
        account_id=command.account_id,
        ticket=command.ticket,
        symbol=command.symbol,
        volume=command.volume,
        cause=command.cause,
        state=command.state,
        attempts=command.attempts,
        created_at=command.created_at,
        outcome_unknown=command.outcome_unknown,
    )


def sync_summary(outcome: IngestOutcome) -> SyncSummary:
    state, result = outcome.state, outcome.reconciliation
    return SyncSummary(
        applied=outcome.applied,
        account_id=outcome.account_id,
        clock_offset_seconds=round(outcome.clock_offset.total_seconds(), 3),
        status=state.status,
        total_syncs=state.total_syncs,
        open_positions_count=state.open_positions_count,
        matched_positions=state.matched_positions,
        divergences_detected=state.divergences_detected,
        pending_trades=len(result.pending) if result else 0,
        divergences=[
            DivergenceOut(
                reasons=[reason.value for reason in divergence.reasons],
                trade_id=divergence.trade_id,
                ticket=divergence.ticket,
                symbol=divergence.symbol,
                message=divergence.message,
            )
            for divergence in (result.divergences if result else ())
        ],
        closed_on_broker=[closed.ticket for closed in result.closed] if result else [],
        commands=[command_out(command) for command in outcome.commands],
    )


@router.post(
    "/snapshots",
    response_model=SyncSummary,
    responses=SIGNED,
    openapi_extra=raw_json_body(SnapshotIn),
)
async def ingest_snapshot(request: Request, services: ServicesDep):
    """Reconcile the account against the snapshot; the answer carries the sync summary and pending close commands."""
    started = time.perf_counter()
    outcome = await step.ingest_snapshot(
        services, await signed_request(request), received_at=datetime.now(UTC), started=started
    )
    return model_response(sync_summary(outcome))


@router.get("/commands", response_model=CommandList, responses=SIGNED)
async def poll_commands(request: Request, services: ServicesDep):
    """Every close command of the device's account not yet acknowledged. De-duplicate by command_id."""
    live = await step.poll_commands(services, await signed_request(request), now=datetime.now(UTC))
    return model_response(CommandList(commands=[command_out(command) for command in live]))


@router.post(
    "/commands/{command_id}/ack",
    response_model=CommandOut,
    responses={**SIGNED, 404: {"description": "no such command for this device's account"}},
    openapi_extra=raw_json_body(AcknowledgementIn),
)
async def acknowledge_command(command_id: KeyPath, request: Request, services: ServicesDep):
    command = await step.acknowledge_command(
        services, await signed_request(request), command_id, now=datetime.now(UTC)
    )
    return model_response(command_out(command))
