"""A follower account with a registered bridge, and builders for the snapshots it sends."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.support.builders import Caller, sign_up
from tradeguard.bridges.client import BridgeClient

STATUS = "/api/v1/reconciliation/status"
LOGS = "/api/v1/reconciliation/logs"
_taken = itertools.count(1)


@dataclass
class Follower:
    """An account with a registered bridge, and its owner."""

    owner: Caller
    account_id: int
    bridge: BridgeClient
    device_id: str
    secret: str

    async def expect(self, trade_id: str, **fields) -> None:
        body = {
            "trade_id": trade_id,
            "symbol": "EURUSD",
            "side": "buy",
            "volume": "0.10",
            "entry_price": "1.08500",
            "opened_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat(),
            **fields,
        }
        response = await self.owner.post(f"/api/v1/accounts/{self.account_id}/trades", json=body)
        assert response.status_code in (200, 201), response.text

    async def status(self) -> dict:
        return (await self.owner.get(STATUS, account_id=self.account_id)).json()

    async def events(self, **filters) -> list[dict]:
        return (await self.owner.get(LOGS, account_id=self.account_id, limit=500, **filters)).json()["events"]


async def register_follower(api, owner: Caller | None = None) -> Follower:
    owner = owner or await sign_up(api)
    account_id = await owner.new_account()
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    bridge = BridgeClient(api.http, device_id=device["device_id"], secret=device["secret"])
    return Follower(owner, account_id, bridge, device["device_id"], device["secret"])


def position(ticket, **fields) -> dict:
    return {
        "ticket": ticket,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": "0.10",
        "open_price": "1.08500",
        "current_price": "1.08600",
        "profit": "10.00",
        "opened_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat(),
        **fields,
    }


def snapshot(*positions, taken_at: datetime | None = None, **fields) -> dict:
    # Strictly increasing times: the service ignores a snapshot not newer than the last one applied.
    taken_at = taken_at or datetime.now(UTC) + timedelta(microseconds=next(_taken))
    return {
        "taken_at": taken_at.isoformat(),
        "balance": "10000",
        "equity": "10010",
        "positions": list(positions),
        "quotes": [{"symbol": "EURUSD", "bid": "1.08600", "ask": "1.08610"}],
        **fields,
    }


def stop_loss_through_the_gap(ticket=7, **fields) -> dict:
    return {
        "ticket": ticket,
        "deal_id": 90000001,
        "close_price": "2331.43",
        "profit": "-637.14",
        "commission": "-1.60",
        "closed_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        "reason": "stop_loss",
        **fields,
    }
