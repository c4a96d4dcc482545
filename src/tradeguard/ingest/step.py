"""One unit of work per bridge request: verify, validate, apply, commit, then invalidate the cache."""

from __future__ import annotations

from datetime import datetime

from tradeguard.cache import invalidate_account
from tradeguard.ingest.authentication import SignedRequest, verify_device
from tradeguard.ingest.snapshots import IngestOutcome, apply_snapshot
from tradeguard.ingest.validation import SnapshotIn
from tradeguard.services import Services


async def ingest_snapshot(
    services: Services, signed: SignedRequest, *, received_at: datetime, started: float
) -> IngestOutcome:
    async with services.write_session() as session:
        device = await verify_device(
            session, signed, device_secrets=services.device_secrets, nonces=services.nonces, now=received_at
        )
        snapshot = SnapshotIn.model_validate_json(signed.body)
        outcome = await apply_snapshot(
            session,
            device,
            snapshot,
            received_at=received_at,
            started=started,
            instruments=services.instruments,
        )
        await session.commit()
    if outcome.applied:
        await invalidate_account(services.cache, device.account_id, device.owner_id)
    return outcome
