"""The platform: the signal platform that tells tradeguard what each account should hold.

It records every trade it sends an account as an expected trade, with a user's JWT, and asks
tradeguard, through the public API, whether an account may still trade and what it made of it.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import httpx

from tradeguard.bridges.client import BridgeError, encode_body
from tradeguard.bridges.simulator.broker import Order

log = logging.getLogger(__name__)

TRADES_PATH = "/api/v1/accounts/{account_id}/trades"
GUARD_STATUS_PATH = "/api/v1/guards/status"
RECONCILIATION_STATUS_PATH = "/api/v1/reconciliation/status"


class SimulatedPlatform:
    """The signal platform: records each trade it sends an account as an expected trade (user JWT)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        *,
        renew_token: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self._http = http
        self._token = token
        self._renew_token = renew_token
        self._trade_numbers: dict[int, Iterator[int]] = defaultdict(lambda: itertools.count(1))

    def next_trade_id(self, account_id: int) -> str:
        return f"sim-{account_id}-{next(self._trade_numbers[account_id]):05d}"

    async def record(self, account_id: int, order: Order, opened_at: datetime) -> None:
        """Raises BridgeError when tradeguard refuses the trade."""
        body = {
            "trade_id": order.trade_id,
            "symbol": order.symbol,
            "side": order.side.value,
            "volume": order.volume,
            "entry_price": order.price,
            "opened_at": opened_at,
        }
        if order.stop_loss is not None:
            body["stop_loss"] = order.stop_loss
        if order.take_profit is not None:
            body["take_profit"] = order.take_profit
        response = await self._request("POST", TRADES_PATH.format(account_id=account_id), body)
        _raise_for_status(response)

    async def trading_allowed(self, account_id: int) -> bool:
        """False once a guard halted the account: the platform then stops sending it trades.

        When the answer cannot be had, trading goes on: halting is tradeguard's decision, not ours.
        """
        try:
            response = await self._request("GET", f"{GUARD_STATUS_PATH}?account_id={account_id}")
            _raise_for_status(response)
            return bool(response.json().get("trading_allowed", True))
        except (BridgeError, httpx.HTTPError, ValueError) as exc:
            log.debug("guard status of account %s unavailable: %s", account_id, exc)
            return True

    async def reconciliation_status(self, account_id: int) -> dict[str, Any]:
        """What tradeguard made of the account's last snapshot. Raises BridgeError or httpx.HTTPError."""
        response = await self._request("GET", f"{RECONCILIATION_STATUS_PATH}?account_id={account_id}")
        _raise_for_status(response)
        return response.json()

    async def _request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        content = None if payload is None else encode_body(payload)
        response = await self._http.request(method, path, content=content, headers=self._headers())
        if response.status_code == 401 and self._renew_token is not None:
            # A demo outlives a token; sign in again once and retry.
            self._token = await self._renew_token()
            response = await self._http.request(method, path, content=content, headers=self._headers())
        return response

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise BridgeError(response.status_code, response.text[:300])
