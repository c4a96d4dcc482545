from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from tradeguard.accounts.service import get_visible_account
from tradeguard.api.deps import AuthenticatedRoute, PrincipalDep, ServicesDep, SessionDep
from tradeguard.api.params import AccountIdPath, KeyPath
from tradeguard.api.responses import json_response, model_response
from tradeguard.api.schemas import DeviceCreated, DeviceOut, NoFields
from tradeguard.ingest.devices import create_device, list_devices, revoke_device

router = APIRouter(prefix="/accounts", tags=["devices"], route_class=AuthenticatedRoute)


@router.post("/{account_id}/devices", response_model=DeviceCreated, status_code=201)
async def create(
    account_id: AccountIdPath,
    principal: PrincipalDep,
    services: ServicesDep,
    body: NoFields | None = None,
):
    """Register a bridge for the account. The secret is in this response only."""
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        device, secret = await create_device(
            work.session, account, services.device_secrets, datetime.now(UTC)
        )
    created = DeviceCreated(
        device_id=device.device_id, account_id=account.id, secret=secret, created_at=device.created_at
    )
    return model_response(created, 201)


@router.get("/{account_id}/devices", response_model=list[DeviceOut])
async def index(account_id: AccountIdPath, principal: PrincipalDep, session: SessionDep):
    account = await get_visible_account(session, principal, account_id)
    devices = await list_devices(session, account)
    return json_response(
        [DeviceOut.model_validate(d, from_attributes=True).model_dump(mode="json") for d in devices]
    )


@router.delete("/{account_id}/devices/{device_id}", status_code=204)
async def revoke(
    account_id: AccountIdPath, device_id: KeyPath, principal: PrincipalDep, services: ServicesDep
):
    """Revoke a bridge: its signatures are refused from the next request on."""
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        await revoke_device(work.session, account, device_id, datetime.now(UTC))
    return Response(status_code=204)
