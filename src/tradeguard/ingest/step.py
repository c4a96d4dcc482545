"""One unit of work per bridge request: verify, validate, apply; `Services.unit_of_work` ends it.

Snapshots are the exception: what can be refused alone (headers, signature, body) is refused as
each arrives, and the snapshots admitted together are applied together (`ingest.batches`), in one
unit of work whose ending (commit, invalidate, rebuild, publish, wake) runs once, before any of
them is answered. If that unit of work fails before its commit, its snapshots are applied again
one by one, each in its own, so that only the one at fault fails, with the answer it would have
had alone.

A batch lets the next one start once it holds its accounts' rows (`rows.lock_states`, in account
order): the next batch's transaction runs while this one applies, commits and ends, and waits on
the row of any account the two share until this one's commit, so one account's snapshots are
applied in arrival order. Each batch's ending (and its snapshots applied alone, if it failed) waits
for the ending of the batch before it, so the cache and the live stream see the batches in order;
it waits with no lock held, after its commit or rollback. A later batch may take an account's rows
while a failed batch rolls back; the failed batch's snapshot applied alone after it is then older
than what the account holds, and is answered as not applied, as it would have been had it arrived
late.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions import commands
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.errors import NotAuthenticated
from tradeguard.ingest.authentication import (
    NONCE_USED,
    SignedRequest,
    verify_device,
    verify_known_device,
    verify_signature,
)
from tradeguard.ingest.batches import Batches, Queued, Turn
from tradeguard.ingest.devices import DeviceIdentity, DeviceSecrets
from tradeguard.ingest.nonces import NonceStore
from tradeguard.ingest.snapshots import (
    REVOKED,
    IngestOutcome,
    IngestPolicy,
    LockedAccount,
    apply_snapshot,
    lock_account,
    read_accounts,
)
from tradeguard.ingest.validation import AcknowledgementIn, SnapshotIn, parse_snapshot
from tradeguard.store import accounts_state as rows
from tradeguard.store.models import AccountState, CloseCommand


class Write(Protocol):
    """A write in progress: its session, and what it changed, for the steps after its commit."""

    session: AsyncSession

    def account_changed(self, account_id: int, owner_id: int) -> None: ...

    def publish_state(self, state: AccountState) -> None: ...

    @property
    def committed(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class AdmittedSnapshot:
    """A snapshot whose signature and body checked out, waiting for its batch."""

    signed: SignedRequest
    device: DeviceIdentity
    snapshot: SnapshotIn
    received_at: datetime
    started: float


class BridgeServices(Protocol):
    """What a bridge request needs of the process (`tradeguard.services.Services` is one)."""

    device_secrets: DeviceSecrets
    nonces: NonceStore
    ingest_policy: IngestPolicy
    instruments: InstrumentTable
    snapshot_batches: Batches[AdmittedSnapshot, IngestOutcome]
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]]

    def unit_of_work(
        self, *, ending_after: Callable[[], Awaitable[None]] | None = None
    ) -> AbstractAsyncContextManager[Write]: ...


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
    device = await verify_signature(
        signed, device_secrets=services.device_secrets, sessions=services.sessions, now=received_at
    )
    snapshot = parse_snapshot(
        signed.body,
        clock=services.ingest_policy.clock_at(received_at),
        account_currency=device.currency,
    )
    admitted = AdmittedSnapshot(signed, device.identity, snapshot, received_at, started)
    return await services.snapshot_batches.submit(admitted)


async def apply_batch(
    services: BridgeServices, batch: Sequence[Queued[AdmittedSnapshot, IngestOutcome]], turn: Turn
) -> None:
    """Apply a batch in one unit of work and answer each of its snapshots; see the module's docstring."""
    work: Write | None = None
    try:
        async with services.unit_of_work(ending_after=turn.previous_ended) as work:
            answers = await _apply_together(services, work, [queued.item for queued in batch], turn)
    except Exception as error:
        if work is not None and work.committed:
            for queued in batch:
                queued.fail_with(error)
            return
        await turn.previous_ended()
        for queued in batch:
            try:
                queued.answer_with(await _apply_alone(services, queued.item))
            except Exception as alone:
                queued.fail_with(alone)
        return
    for queued, answer in zip(batch, answers, strict=True):
        if isinstance(answer, Exception):
            queued.fail_with(answer)
        else:
            queued.answer_with(answer)


async def _apply_together(
    services: BridgeServices, work: Write, batch: list[AdmittedSnapshot], turn: Turn
) -> list[IngestOutcome | NotAuthenticated]:
    """Nonces claimed and states locked once for the batch, then each snapshot applied in arrival order;
    the next batch may start once the states are locked."""
    session = work.session
    claimed = await services.nonces.claim_all(
        session, [(item.device.device_id, item.signed.nonce, item.received_at) for item in batch]
    )
    answers: list[IngestOutcome | NotAuthenticated | None] = [None] * len(batch)
    fresh: list[int] = []
    for index, item in enumerate(batch):
        key = (item.device.device_id, item.signed.nonce)
        if key in claimed:
            claimed.discard(key)
            fresh.append(index)
        else:
            answers[index] = NotAuthenticated(NONCE_USED)
    locked = await rows.lock_states(session, (batch[index].device.device_id for index in fresh))
    turn.let_next_start()
    refused = [index for index in fresh if batch[index].device.device_id not in locked]
    if refused:
        # As alone, a request refused after its nonce was claimed does not use it up.
        await services.nonces.release(
            session, [(batch[index].device.device_id, batch[index].signed.nonce) for index in refused]
        )
        for index in refused:
            answers[index] = NotAuthenticated(REVOKED)
    to_apply = [index for index in fresh if batch[index].device.device_id in locked]
    last_of_account = {batch[index].device.account_id: index for index in to_apply}
    # Read once for each account's first snapshot; a second one reads what the first wrote.
    stored = await read_accounts(session, last_of_account) if to_apply else {}
    pending = rows.PendingWrites()
    for index in to_apply:
        item = batch[index]
        if item.device.account_id in pending.accounts:
            await rows.write_pending(session, pending)
        account, state = locked[item.device.device_id]
        outcome = await apply_snapshot(
            session,
            LockedAccount(account=account, state=state),
            item.snapshot,
            received_at=item.received_at,
            started=item.started,
            instruments=services.instruments,
            policy=services.ingest_policy,
            stored=stored.pop(item.device.account_id, None),
            pending=pending,
        )
        if outcome.applied:
            work.account_changed(item.device.account_id, item.device.owner_id)
            work.publish_state(outcome.state)
        if last_of_account[item.device.account_id] != index:
            # A later snapshot of the batch goes on writing the same state: this one answers with
            # the state as it left it.
            outcome = dataclasses.replace(outcome, state=rows.copy_of_state(state))
        answers[index] = outcome
    await rows.write_pending(session, pending)
    return answers


async def _apply_alone(services: BridgeServices, item: AdmittedSnapshot) -> IngestOutcome:
    """The snapshot in a unit of work of its own, checked again from its signature on."""
    async with services.unit_of_work() as work:
        device = await verify_known_device(
            work.session,
            item.signed,
            device_secrets=services.device_secrets,
            nonces=services.nonces,
            now=item.received_at,
        )
        locked = await lock_account(work.session, device)
        snapshot = parse_snapshot(
            item.signed.body,
            clock=services.ingest_policy.clock_at(item.received_at),
            account_currency=locked.account.currency,
        )
        outcome = await apply_snapshot(
            work.session,
            locked,
            snapshot,
            received_at=item.received_at,
            started=item.started,
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
