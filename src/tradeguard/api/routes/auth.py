from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form

from tradeguard.api.deps import PrincipalDep, ServicesDep, SessionDep
from tradeguard.api.responses import model_response
from tradeguard.api.schemas import LoginForm, Me, Token
from tradeguard.auth.tokens import Principal, issue_token
from tradeguard.auth.users import authenticate
from tradeguard.errors import NotAuthenticated, NotFound
from tradeguard.store.models import User

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=Token, responses={401: {"description": "wrong email or password"}})
async def login(form: Annotated[LoginForm, Form()], services: ServicesDep, session: SessionDep):
    user = await authenticate(session, email=form.username, password=form.password)
    if user is None:
        raise NotAuthenticated("wrong email or password")
    lifetime = timedelta(seconds=services.settings.jwt_expires_seconds)
    token = issue_token(
        Principal(user.id, user.role, user.credentials_version),
        secret=services.jwt_secret,
        now=datetime.now(UTC),
        lifetime=lifetime,
    )
    return model_response(Token(access_token=token, expires_in=int(lifetime.total_seconds())))


@router.get("/me", response_model=Me)
async def me(principal: PrincipalDep, session: SessionDep):
    user = await session.get(User, principal.user_id)
    if user is None:
        raise NotFound("user not found")
    return model_response(Me(id=user.id, email=user.email, role=user.role, created_at=user.created_at))
