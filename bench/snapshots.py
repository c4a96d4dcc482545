"""Signed snapshot requests for seeded accounts, as a bridge would send them.

Each account's positions are the seeded ones (so they match the expected trades); prices move a
little on every snapshot, never enough to trip the market guard. `critical()` drops the equity
25 % below the peak, past the default 20 % critical drawdown, which closes every position.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from bench.seed import SeededAccount
from tradeguard.bridges.client import SNAPSHOTS_PATH
from tradeguard.ingest.signature import HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign

BALANCE = Decimal("10000")


class SnapshotSigner:
    """Snapshots of one account, with strictly increasing `taken_at` and a fresh nonce each time."""

    def __init__(self, account: SeededAccount, *, rng: random.Random | None = None) -> None:
        self.account = account
        self._rng = rng or random.Random(account.account_id)
        self._last_taken: datetime | None = None
        self._positions = account.positions
        self._quantum = {p.symbol: Decimal(p.spread) / 10 for p in self._positions}
        self._open = {p.ticket: Decimal(p.open_price) for p in self._positions}

    def _taken_at(self) -> datetime:
        now = datetime.now(UTC)
        if self._last_taken is not None and now <= self._last_taken:
            now = self._last_taken + timedelta(microseconds=1)
        self._last_taken = now
        return now

    def body(self, *, equity_factor: Decimal = Decimal(1), with_positions: bool = True) -> bytes:
        positions = []
        quotes = []
        quoted: set[str] = set()
        total_profit = Decimal(0)
        for spec in self._positions if with_positions else ():
            quantum = self._quantum[spec.symbol]
            price = self._open[spec.ticket] + quantum * self._rng.randint(-20, 20)
            profit = ((price - self._open[spec.ticket]) / quantum).quantize(Decimal("0.01"))
            if spec.side == "sell":
                profit = -profit
            total_profit += profit
            positions.append(
                {
                    "ticket": spec.ticket,
                    "symbol": spec.symbol,
                    "side": spec.side,
                    "volume": spec.volume,
                    "open_price": spec.open_price,
                    "current_price": str(price),
                    "profit": str(profit),
                    "opened_at": spec.opened_at,
                }
            )
            # One quote per symbol: past ten positions the symbols repeat, and a body may quote each once.
            if spec.symbol not in quoted:
                quoted.add(spec.symbol)
                quotes.append(
                    {"symbol": spec.symbol, "bid": str(price), "ask": str(price + Decimal(spec.spread))}
                )
        equity = ((BALANCE + total_profit) * equity_factor).quantize(Decimal("0.01"))
        return orjson.dumps(
            {
                "taken_at": self._taken_at().isoformat(),
                "balance": str(BALANCE),
                "equity": str(equity),
                "positions": positions,
                "quotes": quotes,
            }
        )

    def critical(self) -> bytes:
        """Equity 25 % below the balance (the peak after a normal snapshot): a critical drawdown."""
        return self.body(equity_factor=Decimal("0.75"))

    def headers(self, body: bytes, path: str = SNAPSHOTS_PATH, method: str = "POST") -> dict[str, str]:
        timestamp = str(int(time.time()))
        nonce = os.urandom(16).hex()
        return {
            HEADER_DEVICE: self.account.device_id,
            HEADER_TIMESTAMP: timestamp,
            HEADER_NONCE: nonce,
            HEADER_SIGNATURE: sign(self.account.secret, method, path, timestamp, nonce, body),
            "Content-Type": "application/json",
        }
