"""The operator's platform-wide numbers: exposure per instrument and signal, divergence rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter

from tradeguard.api.deps import PrincipalDep, ReadsDep
from tradeguard.api.responses import JSONBytes
from tradeguard.queries.read_models import DivergenceRates, PlatformExposure
from tradeguard.values import UtcTime

router = APIRouter(prefix="/platform", tags=["platform"])

DEFAULT_WINDOW = timedelta(days=7)
OPERATORS_ONLY = {404: {"description": "the caller is not an operator (owner or admin)"}}


@router.get("/exposure", response_model=PlatformExposure, responses=OPERATORS_ONLY)
async def exposure(principal: PrincipalDep, reads: ReadsDep):
    return JSONBytes(await reads.platform_exposure(principal))


@router.get("/divergence-rates", response_model=DivergenceRates, responses=OPERATORS_ONLY)
async def divergence_rates(principal: PrincipalDep, reads: ReadsDep, since: UtcTime | None = None):
    """The trades received since `since` (7 days ago by default) and how many of them diverged."""
    since = since or datetime.now(UTC) - DEFAULT_WINDOW
    return JSONBytes(await reads.divergence_rates(principal, since))
