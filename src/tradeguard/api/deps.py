"""Request dependencies: the services, a database session, the authenticated caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.auth.tokens import Principal
from tradeguard.errors import NotAuthenticated
from tradeguard.queries.service import ReadService
from tradeguard.services import Services

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_reads(request: Request) -> ReadService:
    return request.app.state.services.reads


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; whatever the handler did not commit is rolled back when it closes."""
    async with request.app.state.services.sessions() as session:
        yield session


async def current_principal(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    if not token:
        raise NotAuthenticated("not authenticated")
    return request.app.state.services.tokens.read(token)


ServicesDep = Annotated[Services, Depends(get_services)]
ReadsDep = Annotated[ReadService, Depends(get_reads)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
