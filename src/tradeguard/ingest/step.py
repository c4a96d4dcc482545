"""One unit of work per bridge request: verify, validate, apply; `Services.unit_of_work` ends it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions import commands
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.ingest.authentication import SignedRequest, verify_device, verify_known_device
from tradeguard.ingest.devices import DeviceIdentity, DeviceSecrets
from tradeguard.ingest.nonces import NonceStore
from tradeguard.ingest.snapshots import IngestOutcome, IngestPolicy, apply_snapshot, lock_account
from tradeguard.ingest.validation import AcknowledgementIn, parse_snapshot
from tradeguard.store.models import AccountState, CloseCommand


class Write(Protocol):
    """A write in progress: its session, and what it changed, for the steps after its commit."""

    session: AsyncSession

    def account_changed(self, account_id: int, owner_id: int) -> None: ...

    def publish_state(self, state: AccountState) -> None: ...


class BridgeServices(Protocol):
    """What a bridge request needs of the process (`tradeguard.services.Services` is one)."""

    device_secrets: DeviceSecrets
    nonces: NonceStore
    ingest_policy: IngestPolicy
    instruments: InstrumentTable

    def unit_of_work(self) -> AbstractAsyncContextManager[Write]: ...


async def _signed_device(
    services: BridgeServices, session: AsyncSession, signed: SignedRequest, now: datetime
) -> DeviceIdentity:
    return await verify_device(
        session, signed, device_secrets=services.device_secrets, nonces=services.nonces, now=now
    )


async def ingest_snapshot(
    services: BridgeServices, signed: SignedRequest, *, received_at: datetime, started: float
) -> IngestOutcome:
    """A snapshot not applied changes the account only through the commands it hands out (audited)."""
    async with services.unit_of_work() as work:
        device = await verify_known_device(
            work.session,
            signed,
            device_secrets=services.device_secrets,
            nonces=services.nonces,
            now=received_at,
        )
        locked = await lock_account(work.session, device)
        snapshot = parse_snapshot(
            signed.body,
            clock=services.ingest_policy.clock_at(received_at),
            account_currency=locked.account.currency,
        )
        outcome = await apply_snapshot(
            work.session,
            locked,
            snapshot,
            received_at=received_at,
            started=started,
            instruments=services.instruments,
            policy=services.ingest_policy,
        )
        if outcome.applied:
            work.account_changed(device.account_id, device.owner_id)
            work.publish_state(outcome.state)
    return outcome


async def poll_commands(
    services: BridgeServices, signed: SignedRequest, *, now: datetime
) -> list[CloseCommand]:
    """Every command the account's bridge has not acknowledged; delivery is at least once."""
    async with services.unit_of_work() as work:
        device = await _signed_device(services, work.session, signed, now)
        live = await commands.live_commands(work.session, device.account_id)
        commands.mark_sent(work.session, live, now=now, timeout=services.ingest_policy.command_timeout)
    return live


async def acknowledge_command(
    services: BridgeServices, signed: SignedRequest, command_id: str, *, now: datetime
) -> CloseCommand:
    async with services.unit_of_work() as work:
        device = await _signed_device(services, work.session, signed, now)
        ack = AcknowledgementIn.model_validate_json(signed.body)
        command = await commands.acknowledge(
            work.session,
            device.account_id,
            device.device_id,
            command_id,
            commands.Acknowledgement(ack.status, ack.detail, ack.close_price, ack.profit),
            now,
        )
    return command
