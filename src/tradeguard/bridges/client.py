"""What an MT5 or exchange bridge imports to talk to tradeguard: signed snapshots, command polling, acks.

Decimals are sent as JSON strings, which tradeguard reads exactly; datetimes as RFC 3339.

Closed deals go out at least once: those reported with `report_closed_deals` ride along with
every snapshot until one that carries them is applied (tradeguard counts a deal sent again once).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import httpx
import orjson

from tradeguard.ingest.signature import HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign

SNAPSHOTS_PATH = "/api/v1/ingest/snapshots"
COMMANDS_PATH = "/api/v1/ingest/commands"


class BridgeError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_body(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_encode_default)


class BridgeClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        device_id: str,
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._device_id = device_id
        self._secret = secret
        self._clock = clock
        self._unsent_deals: list[dict] = []

    def signed_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        nonce = secrets.token_hex(16)
        return {
            HEADER_DEVICE: self._device_id,
            HEADER_TIMESTAMP: timestamp,
            HEADER_NONCE: nonce,
            HEADER_SIGNATURE: sign(self._secret, method, path, timestamp, nonce, body),
            "Content-Type": "application/json",
        }

    async def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        body = b"" if payload is None else encode_body(payload)
        headers = self.signed_headers(method, path, body)
        return await self._http.request(method, path, content=body, headers=headers)

    def report_closed_deals(self, deals: Iterable[dict]) -> None:
        """Deals the broker's history shows since the last report, as `closed_deals` items."""
        self._unsent_deals.extend(deals)

    async def send_snapshot(self, snapshot: dict) -> dict:
        """The sync summary, with the close commands the bridge should carry out.

        Carries the deals not yet taken: they are kept until a snapshot carrying them is applied,
        except when tradeguard refuses them (422 naming `closed_deals`), so that one bad deal
        cannot keep every later snapshot out.
        """
        deals = self._unsent_deals[:]
        if deals:
            snapshot = {**snapshot, "closed_deals": [*snapshot.get("closed_deals", ()), *deals]}
        try:
            summary = _json_or_raise(await self.request("POST", SNAPSHOTS_PATH, snapshot))
        except BridgeError as error:
            if error.status_code == 422 and "closed_deals" in error.detail:
                self._forget(deals)
            raise
        if summary.get("applied"):
            self._forget(deals)
        return summary

    def _forget(self, deals: list[dict]) -> None:
        # Deals reported while the request was under way stay for the next snapshot.
        del self._unsent_deals[: len(deals)]

    async def poll_commands(self) -> list[dict]:
        return _json_or_raise(await self.request("GET", COMMANDS_PATH))["commands"]

    async def acknowledge(self, command_id: str, status: str, **fields: Any) -> dict:
        path = f"{COMMANDS_PATH}/{command_id}/ack"
        return _json_or_raise(await self.request("POST", path, {"status": status, **fields}))


def _json_or_raise(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise BridgeError(response.status_code, detail)
    return response.json()
