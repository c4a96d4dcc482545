"""One Binance USDⓈ-M futures account as a bridge's broker, through ccxt's synchronous `binanceusdm` client.

Every amount comes from the exchange's own string fields (ccxt's `info`: `walletBalance`, `positionAmt`,
`unRealizedProfit`, `realizedPnl` ...) read as `Decimal`, never from ccxt's floats.

- A position's ticket is its symbol and side, `BTCUSDT:long` / `BTCUSDT:short`: Binance has no position ids,
  and holds at most one position per symbol and side (one-way mode: `BOTH`, its side from the sign of
  `positionAmt`; hedge mode: `LONG` and `SHORT`).
- Closed deals are the fills (`userTrades`) that reduced a position, found from a per-symbol trade-id cursor.
- A close is one market order, reduce-only (one-way) or on the position's side (hedge), whose client order
  id is derived from the command id: the order that carried a command out is found by that id after a lost
  answer or a restart, and Binance refuses a second order with the same id (-4116).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from tradeguard.bridges.broker import (
    AccountReading,
    BrokerUnavailable,
    CloseOrder,
    CloseOutcome,
    OutcomeStatus,
    ReadFailed,
)
from tradeguard.bridges.exchange.account import ExchangeAccount

CLIENT_ORDER_ID_PREFIX = "tg-"
TRADES_PAGE = 1000
# Binance: "execution status unknown" (-1006, -1007) and its internal errors: the order may exist.
UNKNOWN_EXECUTION_CODES = frozenset({-1000, -1001, -1006, -1007})
DUPLICATE_CLIENT_ORDER_ID = -4116
CREDENTIALS_REFUSED = frozenset({-1022, -2014, -2015})
TIMESTAMP_OUTSIDE_RECV_WINDOW = -1021
# Client order ids Binance gives the orders it sends itself (ORDER_TRADE_UPDATE documentation).
REASON_BY_CLIENT_ID_PREFIX = (
    (CLIENT_ORDER_ID_PREFIX, "close_command"),
    ("autoclose-", "stop_out"),
    ("adl_autoclose", "other"),
    ("settlement_autoclose-", "other"),
)
REASON_BY_ORDER_TYPE = {
    "STOP": "stop_loss",
    "STOP_MARKET": "stop_loss",
    "TRAILING_STOP_MARKET": "stop_loss",
    "TAKE_PROFIT": "take_profit",
    "TAKE_PROFIT_MARKET": "take_profit",
}


def client_order_id(command_id: str) -> str:
    """`tg-` and the command's UUID in 32 hex digits: 35 of the 36 characters Binance allows."""
    try:
        digits = uuid.UUID(command_id).hex
    except ValueError:
        digits = hashlib.sha256(command_id.encode()).hexdigest()[:32]
    return CLIENT_ORDER_ID_PREFIX + digits


def binance_error(error: ccxt.BaseError) -> tuple[int | None, str]:
    """Binance's `{"code": ..., "msg": ...}` carried in a ccxt error's message, or (None, the message)."""
    text = str(error)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            return body["code"], str(body.get("msg", ""))
    return None, text


def _millis(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


@dataclass(frozen=True, slots=True)
class _Ticket:
    market_id: str
    long: bool

    @classmethod
    def parse(cls, ticket: str) -> _Ticket:
        market_id, _, side = ticket.rpartition(":")
        if not market_id or side not in ("long", "short"):
            raise ValueError(f"{ticket!r} is not a ticket of this bridge (SYMBOL:long or SYMBOL:short)")
        return cls(market_id, side == "long")

    def __str__(self) -> str:
        return f"{self.market_id}:{'long' if self.long else 'short'}"

    def holds(self, position: dict[str, Any]) -> bool:
        if position["symbol"] != self.market_id:
            return False
        side = position["positionSide"]
        if side == "BOTH":
            return (Decimal(position["positionAmt"]) > 0) == self.long
        return side == ("LONG" if self.long else "SHORT")


class BinanceUsdmBroker:
    def __init__(self, account: ExchangeAccount) -> None:
        self._account = account
        self._client: Any = None
        self._symbols: dict[str, str] = {}
        """Binance's market id (`BTCUSDT`) to ccxt's symbol (`BTC/USDT:USDT`)."""
        self._next_trade_id: dict[str, int] = {}
        self._history_start_ms = 0
        self._reasons: dict[str, str] = {}
        """A closing fill's reason by its order id."""
        self._opened_at: dict[str, datetime] = {}
        self._traded_symbols: set[str] = set()
        self._account_state: tuple[str, frozenset] | None = None
        self._changed_before = False
        self._quiet_until = 0.0

    @property
    def description(self) -> str:
        return f"binanceusdm account {self._account.name}"

    def connect(self) -> None:
        account = self._account
        options = {"fetchCurrencies": False, "adjustForTimeDifference": True, **account.options}
        settings = {
            "apiKey": account.api_key,
            "secret": account.api_secret,
            "enableRateLimit": True,
            "timeout": int(account.timeout_seconds * 1000),
            "options": options,
        }
        if account.rate_limit_ms is not None:
            settings["rateLimit"] = account.rate_limit_ms
        client = ccxt.binanceusdm(settings)
        if account.demo:
            client.enable_demo_trading(True)
        if account.api_url:
            _point_at(client, account.api_url)
        try:
            markets = client.load_markets()
            client.fetch_balance()
        except ccxt.BaseError as error:
            code, message = binance_error(error)
            if code in CREDENTIALS_REFUSED:
                raise ValueError(f"{self.description}: the API key is refused: {code} {message}") from None
            raise BrokerUnavailable(f"{self.description}: {message}") from None
        self._symbols = {
            market["id"]: market["symbol"]
            for market in markets.values()
            if market.get("linear") and market.get("settle") == account.settle_currency
        }
        unknown = [symbol for symbol in account.watch if symbol not in self._symbols]
        if unknown:
            raise ValueError(f"{self.description}: no {account.settle_currency}-settled market for {unknown}")
        self._client = client
        self._history_start_ms = int((time.time() - account.history_hours * 3600) * 1000)

    def disconnect(self) -> None:
        self._client = None

    def read(self, now: datetime) -> AccountReading:
        self._wait_out_rate_limit(ReadFailed)
        try:
            return self._read(now)
        except ccxt.BaseError as error:
            self._note_refusal(error)
            raise ReadFailed(f"{self.description}: {binance_error(error)[1]}") from None
        except (KeyError, TypeError, ArithmeticError) as error:
            # A field missing or not a number: the answer is not what Binance documents.
            raise ReadFailed(
                f"{self.description}: unexpected answer: {type(error).__name__} {error}"
            ) from None

    def _read(self, now: datetime) -> AccountReading:
        client = self._client
        assets = client.fetch_balance()["info"]["assets"]
        asset = next((row for row in assets if row["asset"] == self._account.settle_currency), None)
        if asset is None:
            raise ReadFailed(f"{self.description}: the account holds no {self._account.settle_currency}")
        held = [
            position["info"]
            for position in client.fetch_positions()
            if Decimal(position["info"]["positionAmt"]) != 0 and position["info"]["symbol"] in self._symbols
        ]
        positions = [self._position(row, now) for row in held]
        held_symbols = {row["symbol"] for row in held}
        cursors = dict(self._next_trade_id)
        # A fill moves the wallet (its commission at least) or a position: only then, and at the
        # reading after (the trade list may show a fill a moment after the wallet), is the history
        # read, which costs 5 of the IP's 2,400 weight a minute per symbol.
        state = (
            asset["walletBalance"],
            frozenset((row["symbol"], row["positionSide"], row["positionAmt"]) for row in held),
        )
        changed = state != self._account_state
        deals = []
        if changed or self._changed_before:
            traded = held_symbols | self._traded_symbols | set(self._account.watch)
            deals = self._closed_deals(sorted(traded), cursors, now)
        quoted = sorted(held_symbols | set(self._account.watch))
        snapshot = {
            "taken_at": now,
            "balance": Decimal(asset["walletBalance"]),
            "equity": Decimal(asset["walletBalance"]) + Decimal(asset["unrealizedProfit"]),
            "margin": Decimal(asset["initialMargin"]),
            "currency": self._account.settle_currency,
            "positions": positions,
            "quotes": self._quotes(quoted),
        }
        # Only a reading that succeeded moves the cursors on: a failed one is read again in full.
        self._next_trade_id = cursors
        self._account_state, self._changed_before = state, changed
        self._traded_symbols |= held_symbols
        tickets = {position["ticket"] for position in positions}
        self._opened_at = {ticket: at for ticket, at in self._opened_at.items() if ticket in tickets}
        return AccountReading(snapshot, tuple(deals))

    def _position(self, row: dict[str, Any], now: datetime) -> dict[str, Any]:
        amount = Decimal(row["positionAmt"])
        long = amount > 0
        ticket = str(_Ticket(row["symbol"], long))
        # Binance keeps no opening time: the position's updateTime when the bridge first saw it.
        opened_at = self._opened_at.setdefault(ticket, min(_millis(row["updateTime"]), now))
        contract_size = Decimal(str(self._client.market(self._symbols[row["symbol"]])["contractSize"] or 1))
        return {
            "ticket": ticket,
            "symbol": row["symbol"],
            "side": "buy" if long else "sell",
            "volume": abs(amount) * contract_size,
            "open_price": Decimal(row["entryPrice"]),
            "current_price": Decimal(row["markPrice"]),
            "profit": Decimal(row["unRealizedProfit"]),
            "opened_at": opened_at,
        }

    def _quotes(self, market_ids: list[str]) -> list[dict[str, Any]]:
        if not market_ids:
            return []
        tickers = self._client.fetch_bids_asks([self._symbols[market_id] for market_id in market_ids])
        quotes = []
        for market_id in market_ids:
            ticker = tickers.get(self._symbols[market_id])
            if ticker is None:
                continue
            bid, ask = Decimal(ticker["info"]["bidPrice"]), Decimal(ticker["info"]["askPrice"])
            if bid > 0 and ask >= bid:
                quotes.append({"symbol": market_id, "bid": bid, "ask": ask})
        return quotes

    def _closed_deals(self, market_ids: Iterable[str], cursors: dict[str, int], now: datetime) -> list[dict]:
        deals = []
        for market_id in market_ids:
            for trade in self._new_trades(market_id, cursors):
                ticket = self._reduced(trade)
                if ticket is None:
                    continue
                commission = Decimal(trade["commission"])
                deals.append(
                    {
                        "ticket": str(ticket),
                        "deal_id": str(trade["id"]),
                        "close_price": Decimal(trade["price"]),
                        "profit": Decimal(trade["realizedPnl"]),
                        "commission": -abs(commission)
                        if trade["commissionAsset"] == self._account.settle_currency
                        else Decimal(0),
                        "closed_at": min(_millis(trade["time"]), now),
                        "reason": self._reason(market_id, str(trade["orderId"])),
                    }
                )
        return deals

    def _new_trades(self, market_id: str, cursors: dict[str, int]) -> list[dict[str, Any]]:
        trades: list[dict[str, Any]] = []
        while True:
            if market_id in cursors:
                page = self._client.fetch_my_trades(
                    self._symbols[market_id], None, TRADES_PAGE, {"fromId": cursors[market_id]}
                )
            else:
                page = self._client.fetch_my_trades(
                    self._symbols[market_id], self._history_start_ms, TRADES_PAGE
                )
            rows = [trade["info"] for trade in page]
            if rows:
                cursors[market_id] = max(int(row["id"]) for row in rows) + 1
            trades.extend(rows)
            if len(rows) < TRADES_PAGE:
                return trades

    def _reduced(self, trade: dict[str, Any]) -> _Ticket | None:
        """The position a fill reduced, or None for a fill that opened or added to one.

        Hedge mode says it outright (a sell on LONG reduces the long). In one-way mode a fill that
        realized profit or loss reduced a position, and so did the bridge's own (reduce-only) orders; a
        manual one-way close exactly at the entry price realizes nothing and is not told from an opening.
        """
        selling = trade["side"] == "SELL"
        side = trade["positionSide"]
        if side != "BOTH":
            return _Ticket(trade["symbol"], side == "LONG") if (side == "LONG") == selling else None
        ours = self._reasons.get(str(trade["orderId"])) == "close_command"
        if Decimal(trade["realizedPnl"]) == 0 and not ours:
            return None
        return _Ticket(trade["symbol"], selling)

    def _reason(self, market_id: str, order_id: str) -> str:
        if order_id not in self._reasons:
            order = self._client.fetch_order(order_id, self._symbols[market_id])["info"]
            self._reasons[order_id] = _reason_of(order)
        return self._reasons[order_id]

    def close(self, order: CloseOrder, earlier: Sequence[str]) -> CloseOutcome:
        try:
            ticket = _Ticket.parse(order.ticket)
            symbol = self._symbols[ticket.market_id]
        except (ValueError, KeyError):
            return CloseOutcome(
                OutcomeStatus.FAILED, f"{order.ticket!r} is no position of {self.description}"
            )
        own_id = client_order_id(order.command_id)
        try:
            self._wait_out_rate_limit(BrokerUnavailable)
            for command_id in (*earlier, order.command_id):
                found = self._find_order(symbol, client_order_id(command_id))
                if found is not None and (found["status"] == "FILLED" or command_id == order.command_id):
                    return self._outcome_of(symbol, found)
            position = next(
                (row for row in self._client.fetch_positions([symbol]) if ticket.holds(row["info"])), None
            )
        except (ccxt.BaseError, BrokerUnavailable) as error:
            if isinstance(error, ccxt.BaseError):
                self._note_refusal(error)
            return CloseOutcome(
                OutcomeStatus.FAILED, f"nothing sent: could not check the exchange first: {error}"
            )
        if position is None:
            return CloseOutcome(
                OutcomeStatus.EXECUTED, f"{ticket} is no longer open on the exchange; no order sent"
            )
        info = position["info"]
        params: dict[str, Any] = {"newClientOrderId": own_id}
        if info["positionSide"] == "BOTH":
            params["reduceOnly"] = True
        else:
            params["positionSide"] = info["positionSide"]
        quantity = abs(Decimal(info["positionAmt"]))
        side = "sell" if ticket.long else "buy"
        try:
            placed = self._client.create_order(symbol, "market", side, str(quantity), None, params)
        except ccxt.BaseError as error:
            return self._after_failed_send(symbol, own_id, error)
        return self._outcome_of(symbol, placed["info"])

    def settle(self, order: CloseOrder) -> CloseOutcome:
        try:
            symbol = self._symbols[_Ticket.parse(order.ticket).market_id]
        except (ValueError, KeyError):
            return CloseOutcome(
                OutcomeStatus.FAILED, f"{order.ticket!r} is no position of {self.description}"
            )
        own_id = client_order_id(order.command_id)
        self._wait_out_rate_limit(BrokerUnavailable)
        try:
            found = self._find_order(symbol, own_id)
        except ccxt.BaseError as error:
            self._note_refusal(error)
            raise BrokerUnavailable(f"{self.description}: cannot look up {own_id}: {error}") from None
        if found is None:
            return CloseOutcome(OutcomeStatus.FAILED, f"no order {own_id} on the exchange: it was never sent")
        return _explained(self._outcome_of(symbol, found), "found after a restart by its client id: ")

    def _after_failed_send(self, symbol: str, own_id: str, error: ccxt.BaseError) -> CloseOutcome:
        code, message = binance_error(error)
        self._note_refusal(error)
        refused = (
            code is not None and code not in UNKNOWN_EXECUTION_CODES and code != DUPLICATE_CLIENT_ORDER_ID
        )
        if refused or (code is None and not isinstance(error, ccxt.OperationFailed)):
            return CloseOutcome(
                OutcomeStatus.FAILED, f"refused: {code} {message}" if code else f"refused: {message}"
            )
        try:
            found = self._find_order(symbol, own_id)
        except ccxt.BaseError as lookup_error:
            return CloseOutcome(
                OutcomeStatus.UNKNOWN,
                f"answer lost ({message}); looking up {own_id} failed too: {lookup_error}",
            )
        if found is None:
            return CloseOutcome(OutcomeStatus.UNKNOWN, f"answer lost ({message}); no order {own_id} found")
        return _explained(
            self._outcome_of(symbol, found), f"answer lost ({message}); found by its client id: "
        )

    def _find_order(self, symbol: str, own_id: str) -> dict[str, Any] | None:
        try:
            return self._client.fetch_order(None, symbol, {"origClientOrderId": own_id})["info"]
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as error:
            if binance_error(error)[0] == -2013:
                return None
            raise

    def _outcome_of(self, symbol: str, order: dict[str, Any]) -> CloseOutcome:
        order_id, status = str(order["orderId"]), order["status"]
        self._reasons[order_id] = _reason_of(order)
        self._traded_symbols.add(order["symbol"])
        detail = f"order {order_id} ({order['clientOrderId']}) {status}: {order['executedQty']} of {order['origQty']}"
        if status in ("NEW", "PARTIALLY_FILLED"):
            return CloseOutcome(OutcomeStatus.UNKNOWN, detail + ", still working")
        if status != "FILLED":
            return CloseOutcome(OutcomeStatus.FAILED, detail)
        price = Decimal(order["avgPrice"])
        try:
            fills = self._client.fetch_my_trades(symbol, None, TRADES_PAGE, {"orderId": order_id})
        except ccxt.BaseError:
            return CloseOutcome(OutcomeStatus.EXECUTED, f"{detail} at {price}", close_price=price)
        profit = sum((Decimal(fill["info"]["realizedPnl"]) for fill in fills), Decimal(0))
        return CloseOutcome(OutcomeStatus.EXECUTED, f"{detail} at {price}", close_price=price, profit=profit)

    def _note_refusal(self, error: ccxt.BaseError) -> None:
        """Rate limits are waited out (Binance bans an IP that keeps sending after a 429); a clock
        that drifted out of recvWindow is measured again."""
        code, _ = binance_error(error)
        if isinstance(error, ccxt.DDoSProtection) or code == -1003:
            headers = self._client.last_response_headers or {}
            retry_after = float(headers.get("Retry-After") or 1)
            self._quiet_until = time.monotonic() + retry_after
        elif code == TIMESTAMP_OUTSIDE_RECV_WINDOW:
            with contextlib.suppress(ccxt.BaseError):
                self._client.load_time_difference()

    def _wait_out_rate_limit(self, raising: type[Exception]) -> None:
        remaining = self._quiet_until - time.monotonic()
        if remaining > 0:
            raise raising(f"{self.description}: rate limited by the exchange for {remaining:.1f} s more")


def _explained(outcome: CloseOutcome, how: str) -> CloseOutcome:
    return dataclasses.replace(outcome, detail=how + outcome.detail)


def _reason_of(order: dict[str, Any]) -> str:
    client_id = order.get("clientOrderId", "")
    for prefix, reason in REASON_BY_CLIENT_ID_PREFIX:
        if client_id.startswith(prefix):
            return reason
    return REASON_BY_ORDER_TYPE.get(order.get("origType") or order.get("type", ""), "manual")


def _point_at(client: Any, base_url: str) -> None:
    """Every REST base of the client moved to `base_url`, keeping its path: no call can reach another host."""
    base = base_url.rstrip("/")
    for name, url in client.urls["api"].items():
        if isinstance(url, str):
            client.urls["api"][name] = base + "/" + url.split("://", 1)[-1].partition("/")[2]
