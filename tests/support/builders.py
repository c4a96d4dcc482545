"""Builders for realistic users, accounts and account state, written through the service layer."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson

from tradeguard.accounts.service import create_account
from tradeguard.auth.tokens import Principal
from tradeguard.auth.users import create_user
from tradeguard.cache import invalidate_accounts
from tradeguard.store.models import (
    Account,
    AccountSnapshot,
    AccountState,
    Alert,
    BrokerPosition,
    ReconciliationEvent,
)

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_tickets = itertools.count(100_000)


@dataclass
class Caller:
    """A signed-in user and their HTTP client."""

    api: object
    user_id: int
    email: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **params) -> httpx.Response:
        return await self.api.http.get(path, params=params or None, headers=self.headers)

    async def post(self, path: str, json=None) -> httpx.Response:
        return await self.api.http.post(path, json=json, headers=self.headers)

    async def put(self, path: str, json=None) -> httpx.Response:
        return await self.api.http.put(path, json=json, headers=self.headers)

    async def delete(self, path: str) -> httpx.Response:
        return await self.api.http.delete(path, headers=self.headers)

    async def new_account(self, name: str = "Follower", **fields) -> int:
        response = await self.post("/api/v1/accounts", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return response.json()["id"]


async def sign_up(api, role: str = "user") -> Caller:
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    async with api.session() as session:
        user = await create_user(session, email=email, password=PASSWORD, role=role, now=NOW)
        await session.commit()
    response = await api.http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return Caller(api=api, user_id=user.id, email=email, role=role, token=response.json()["access_token"])


async def account_without_api(api, owner: Caller, name: str = "Follower") -> int:
    async with api.session() as session:
        account = await create_account(
            session,
            Principal(owner.user_id, owner.role),
            name=name,
            broker=None,
            login=None,
            currency="USD",
            now=NOW,
        )
        await session.commit()
        return account.id


async def write_state(
    api,
    account_id: int,
    *,
    positions: list[dict] = (),
    events: list[dict] = (),
    alerts: list[dict] = (),
    equity_history: list[tuple[Decimal, Decimal]] = (),
    **state_fields,
) -> list[int]:
    """Store an account's state as the ingest step would, then invalidate its cache entries.

    Returns the ids of the stored positions.
    """
    async with api.session() as session:
        state = await session.get(AccountState, account_id)
        for name, value in state_fields.items():
            setattr(state, name, value)
        rows = [BrokerPosition(**position_row(account_id, **position)) for position in positions]
        session.add_all(rows)
        for event in events:
            session.add(
                ReconciliationEvent(
                    account_id=account_id,
                    created_at=NOW,
                    details=orjson.dumps(event.pop("details", {})).decode(),
                    **{"reason": None, "symbol": None, "ticket": None, "trade_id": None, **event},
                )
            )
        for alert in alerts:
            session.add(
                Alert(account_id=account_id, created_at=NOW, details="{}", **{"symbol": None, **alert})
            )
        for index, (equity, peak) in enumerate(equity_history):
            session.add(
                AccountSnapshot(
                    account_id=account_id,
                    taken_at=NOW + timedelta(seconds=5 * index),
                    received_at=NOW + timedelta(seconds=5 * index),
                    balance=peak,
                    equity=equity,
                    margin=None,
                    peak_equity=peak,
                    drawdown_pct=(peak - equity) / peak * 100,
                )
            )
        await session.flush()
        position_ids = [row.id for row in rows]
        owner_id = (await session.get(Account, account_id)).owner_id
        await session.commit()
    await invalidate_accounts(api.services.cache, {account_id: owner_id})
    return position_ids


def position_row(account_id: int, **fields) -> dict:
    row = {
        "account_id": account_id,
        "ticket": str(next(_tickets)),
        "symbol": "EURUSD",
        "side": "buy",
        "volume": Decimal("0.10"),
        "open_price": Decimal("1.08500"),
        "current_price": Decimal("1.08600"),
        "stop_loss": None,
        "take_profit": None,
        "profit": Decimal("10.00"),
        "swap": Decimal("0"),
        "commission": Decimal("0"),
        "opened_at": NOW - timedelta(minutes=5),
        "last_updated_at": NOW,
        "matched_trade_id": None,
        "divergence": None,
    }
    row.update(fields)
    return row


async def store_snapshots(api, account_id: int, snapshots: list[tuple[datetime, Decimal, Decimal]]) -> None:
    """Equity history as the ingest step stores it, at any times: (taken_at, equity, peak) each."""
    async with api.session() as session:
        for taken_at, equity, peak in snapshots:
            session.add(
                AccountSnapshot(
                    account_id=account_id,
                    taken_at=taken_at,
                    received_at=taken_at,
                    balance=Decimal("10000"),
                    equity=equity,
                    margin=None,
                    peak_equity=peak,
                    drawdown_pct=(peak - equity) / peak * 100,
                )
            )
        owner_id = (await session.get(Account, account_id)).owner_id
        await session.commit()
    await invalidate_accounts(api.services.cache, {account_id: owner_id})
