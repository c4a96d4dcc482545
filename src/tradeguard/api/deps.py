"""Request dependencies: the services, a database session, the authenticated caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tradeguard.auth.credentials import CurrentCredentials
from tradeguard.auth.tokens import Principal, TokenCache
from tradeguard.cache import ResponseCache
from tradeguard.errors import NotAuthenticated, NotFound
from tradeguard.ingest.step import BridgeServices
from tradeguard.queries.service import ReadService
from tradeguard.settings import Settings
from tradeguard.stream.bus import EventBus

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_PRINCIPAL = "tradeguard.principal"


class AppServices(BridgeServices, Protocol):
    """What the routes use of the process's services, which the app keeps in `app.state.services`.

    The composition root (`tradeguard.services.Services`) builds them; the API only uses them.
    """

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: ResponseCache
    reads: ReadService
    jwt_secret: str
    tokens: TokenCache
    credentials: CurrentCredentials
    bus: EventBus


async def get_services(request: Request) -> AppServices:
    return request.app.state.services


async def get_reads(request: Request) -> ReadService:
    return request.app.state.services.reads


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; whatever the handler did not commit is rolled back when it closes."""
    async with request.app.state.services.sessions() as session:
        yield session


async def authenticate(request: Request) -> Principal:
    """The caller behind the request's bearer token, verified once per request."""
    principal = request.scope.get(_PRINCIPAL)
    if principal is None:
        token = await _bearer(request)
        if not token:
            raise NotAuthenticated("not authenticated")
        principal = await verified_principal(request.app.state.services, token)
        request.scope[_PRINCIPAL] = principal
    return principal


async def verified_principal(services: AppServices, token: str) -> Principal:
    """The caller behind a token that verifies and whose credentials are still the user's."""
    principal = services.tokens.read(token)
    if not services.credentials.known_current(principal):
        await services.credentials.verify(principal)
    return principal


async def current_principal(request: Request, _token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    return await authenticate(request)


class AuthenticatedRoute(APIRoute):
    """A route whose caller is authenticated before its body is read.

    FastAPI reads and parses a body before it solves any dependency, so without this an
    anonymous caller could make the server parse whatever it sends.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def authenticated_first(request: Request) -> Response:
            await authenticate(request)
            return await handle(request)

        return authenticated_first


async def current_operator(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, who must be the platform's operator: to anyone else the operator's endpoints do not exist."""
    if not principal.sees_every_account:
        raise NotFound("not found")
    return principal


ServicesDep = Annotated[AppServices, Depends(get_services)]
ReadsDep = Annotated[ReadService, Depends(get_reads)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
OperatorDep = Annotated[Principal, Depends(current_operator)]
