"""A local HTTP server answering as Binance USDⓈ-M futures' REST API does, for the exchange bridge's tests.

Written from Binance's public API documentation (developers.binance.com, derivatives/usds-margined-futures):
the endpoints ccxt's `binanceusdm` calls, their field names and string-encoded numbers, HMAC-SHA256
signatures of `SIGNED` endpoints over the query string and body, the `timestamp`/`recvWindow` check, the
error bodies `{"code": ..., "msg": ...}` with their HTTP statuses, `X-MBX-USED-WEIGHT-1M`, one-way (`BOTH`)
and hedge (`LONG`/`SHORT`) positions. Several accounts, told apart by their API key, share one market.

A market order fills at once at the book (a buy at the ask, a sell at the bid); a fill that reduces a
position realizes `(price - entry) * quantity` (the other way round for a short) and pays the taker
commission on its notional, both into the wallet. Tests script failures per endpoint (`script`) and read
back every request received (`requests`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

EIGHT_PLACES = Decimal("0.00000001")
TAKER_COMMISSION = Decimal("0.0004")
LEVERAGE = 10
DEFAULT_RECV_WINDOW_MS = 5000

ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]

# The weight Binance's documentation gives each endpoint (bookTicker: 2 for one symbol, 5 for all).
WEIGHTS = {
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/order"): 1,
    ("POST", "/fapi/v1/order"): 0,
}


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def amount(value: Decimal) -> str:
    return format(value.quantize(EIGHT_PLACES, ROUND_HALF_EVEN), "f")


@dataclass(frozen=True)
class Symbol:
    symbol: str
    base: str
    price_tick: Decimal
    quantity_step: Decimal
    quote: str = "USDT"

    @property
    def price_precision(self) -> int:
        return -self.price_tick.normalize().as_tuple().exponent

    @property
    def quantity_precision(self) -> int:
        return -self.quantity_step.normalize().as_tuple().exponent


SYMBOLS = (
    Symbol("BTCUSDT", "BTC", Decimal("0.10"), Decimal("0.001")),
    Symbol("ETHUSDT", "ETH", Decimal("0.01"), Decimal("0.001")),
    Symbol("SOLUSDT", "SOL", Decimal("0.0100"), Decimal("1")),
)


@dataclass
class Position:
    amount: Decimal
    """Signed: positive long, negative short."""
    entry: Decimal
    updated_ms: int


@dataclass
class Account:
    api_key: str
    api_secret: str
    wallet: Decimal
    hedge_mode: bool = False
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering; `processed`: after carrying the request out."""

    processed: bool = True


@dataclass(frozen=True)
class Delay:
    """Answer only after `seconds` (longer than the client waits), having carried the request out or not."""

    seconds: float
    processed: bool = True


@dataclass(frozen=True)
class ServerError:
    """A 5xx: Binance's "execution status unknown", having carried the request out or not."""

    processed: bool = True
    status: int = 503
    code: int = -1007
    msg: str = (
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
    )


@dataclass(frozen=True)
class Refuse:
    code: int
    msg: str
    status: int = 400


@dataclass(frozen=True)
class RateLimited:
    retry_after: int = 2


Scripted = Drop | Delay | ServerError | Refuse | RateLimited
INSUFFICIENT_MARGIN = Refuse(-2019, "Margin is insufficient.")
REDUCE_ONLY_REJECTED = Refuse(-2022, "ReduceOnly Order is rejected.")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    params: dict[str, str]
    api_key: str | None


class FakeBinance:
    def __init__(self, *, weight_limit: int = 2400) -> None:
        self.symbols = {spec.symbol: spec for spec in SYMBOLS}
        self.books: dict[str, tuple[Decimal, Decimal]] = {
            "BTCUSDT": (Decimal("60000.00"), Decimal("60000.10")),
            "ETHUSDT": (Decimal("3000.00"), Decimal("3000.01")),
            "SOLUSDT": (Decimal("150.0000"), Decimal("150.0100")),
        }
        self.marks: dict[str, Decimal] = {symbol: bid for symbol, (bid, _) in self.books.items()}
        self.accounts: dict[str, Account] = {}
        self.requests: list[Received] = []
        self.clock_offset_ms = 0
        self.weight_limit = weight_limit
        self._weight_minute = 0
        self._weight_used = 0
        self._scripts: dict[tuple[str, str], list[Scripted]] = {}
        self._order_ids = itertools.count(8_389_765_000)
        self._trade_ids = itertools.count(514_000_000)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # The test's side.

    def add_account(self, api_key: str, api_secret: str, wallet: str, *, hedge_mode: bool = False) -> Account:
        account = Account(api_key, api_secret, Decimal(wallet), hedge_mode)
        self.accounts[api_key] = account
        return account

    def trade_by_hand(
        self, account: Account, symbol: str, side: str, quantity: str, client_order_id: str | None = None
    ) -> dict[str, Any]:
        """A market order that is not the bridge's (the exchange's app, a liquidation): no checks, filled."""
        position_side = ("LONG" if side == "BUY" else "SHORT") if account.hedge_mode else "BOTH"
        with self._lock:
            client_order_id = client_order_id or f"web_{next(self._order_ids)}"
            return self._execute_market(
                account, symbol, side, Decimal(quantity), position_side, client_order_id
            )

    def close_by_hand(
        self, account: Account, symbol: str, side: str, client_order_id: str | None = None
    ) -> dict:
        """The whole position of `symbol` on `side` (LONG or SHORT) closed by a market order."""
        position_side = side if account.hedge_mode else "BOTH"
        with self._lock:
            held = account.positions[(symbol, position_side)].amount
            client_order_id = client_order_id or f"web_{next(self._order_ids)}"
            closing_side = "SELL" if held > 0 else "BUY"
            return self._execute_market(
                account, symbol, closing_side, abs(held), position_side, client_order_id
            )

    def set_price(self, symbol: str, bid: str, ask: str | None = None, mark: str | None = None) -> None:
        with self._lock:
            self.books[symbol] = (Decimal(bid), Decimal(ask or bid))
            self.marks[symbol] = Decimal(mark or bid)

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        """The next requests to `method path` get these answers, one each, in order."""
        with self._lock:
            self._scripts.setdefault((method, path), []).extend(answers)

    def orders_received(self, account: Account | None = None) -> list[dict[str, str]]:
        return [
            request.params
            for request in self.requests
            if (request.method, request.path) == ("POST", "/fapi/v1/order")
            and (account is None or request.api_key == account.api_key)
        ]

    def unrealized(self, account: Account) -> Decimal:
        return sum(
            (self._unrealized(symbol, position) for (symbol, _), position in account.positions.items()),
            Decimal(0),
        )

    def equity(self, account: Account) -> Decimal:
        return account.wallet + self.unrealized(account)

    def start(self) -> str:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # The exchange's side.

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def _unrealized(self, symbol: str, position: Position) -> Decimal:
        return ((self.marks[symbol] - position.entry) * position.amount).quantize(
            EIGHT_PLACES, ROUND_HALF_EVEN
        )

    def handle(
        self, method: str, path: str, query: str, body: str, api_key: str | None
    ) -> tuple[Any, int, dict]:
        """The request carried out: (answer, status, headers), or a `Scripted` to act out instead."""
        params = dict(parse_qsl(query, keep_blank_values=True)) | dict(
            parse_qsl(body, keep_blank_values=True)
        )
        with self._lock:
            self.requests.append(Received(method, path, params, api_key))
            headers = self._count_weight(method, path, params)
            if headers is None:
                raise _RateLimit(60 - self.now_ms() // 1000 % 60)
            scripted = self._scripts.get((method, path))
            answer = scripted.pop(0) if scripted else None
            if isinstance(answer, Refuse):
                raise BinanceError(answer.code, answer.msg, answer.status)
            if isinstance(answer, RateLimited):
                raise _RateLimit(answer.retry_after)
            if isinstance(answer, Drop | Delay | ServerError) and not answer.processed:
                return answer, 0, headers
            result = self._route(method, path, params, query, body, api_key)
            return (answer if answer is not None else result), 200, headers

    def _count_weight(self, method: str, path: str, params: dict[str, str]) -> dict | None:
        minute = self.now_ms() // 60_000
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        weight = WEIGHTS.get((method, path), 5 if "symbol" not in params else 2)
        if self._weight_used + weight > self.weight_limit:
            return None
        self._weight_used += weight
        return {"X-MBX-USED-WEIGHT-1M": str(self._weight_used)}

    def _route(self, method: str, path: str, params: dict, query: str, body: str, api_key: str | None) -> Any:
        public = {
            ("GET", "/fapi/v1/exchangeInfo"): self._exchange_info,
            ("GET", "/fapi/v1/time"): lambda: {"serverTime": self.now_ms()},
            ("GET", "/fapi/v1/ticker/bookTicker"): lambda: self._book_ticker(params),
        }
        if (method, path) in public:
            return public[(method, path)]()
        signed = {
            ("GET", "/fapi/v1/leverageBracket"): self._leverage_brackets,
            ("GET", "/fapi/v3/account"): self._account_information,
            ("GET", "/fapi/v3/positionRisk"): self._position_risk,
            ("GET", "/fapi/v1/userTrades"): self._user_trades,
            ("GET", "/fapi/v1/order"): self._query_order,
            ("POST", "/fapi/v1/order"): self._new_order,
        }
        if (method, path) not in signed:
            raise BinanceError(-1099, "Not found, unauthenticated, or unauthorized.", 404)
        account = self._authenticate(params, query, body, api_key)
        return signed[(method, path)](account, params)

    def _authenticate(self, params: dict, query: str, body: str, api_key: str | None) -> Account:
        account = self.accounts.get(api_key or "")
        if account is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        total = query + body
        signed_part, separator, signature = total.rpartition("&signature=")
        expected = hmac.new(account.api_secret.encode(), signed_part.encode(), hashlib.sha256).hexdigest()
        if not separator or not hmac.compare_digest(signature.lower(), expected):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        if "timestamp" not in params:
            raise BinanceError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        timestamp = int(params["timestamp"])
        window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        now = self.now_ms()
        if timestamp > now + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return account

    def _exchange_info(self) -> dict:
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [self._symbol_info(spec) for spec in self.symbols.values()],
        }

    def _symbol_info(self, spec: Symbol) -> dict:
        return {
            "symbol": spec.symbol,
            "pair": spec.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": spec.base,
            "quoteAsset": spec.quote,
            "marginAsset": spec.quote,
            "pricePrecision": spec.price_precision,
            "quantityPrecision": spec.quantity_precision,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": str(spec.price_tick),
                    "maxPrice": "4529764",
                    "tickSize": str(spec.price_tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": str(spec.quantity_step),
                    "maxQty": "1000",
                    "stepSize": str(spec.quantity_step),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": str(spec.quantity_step),
                    "maxQty": "120",
                    "stepSize": str(spec.quantity_step),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": "5"},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ORDER_TYPES,
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }

    def _book_ticker(self, params: dict) -> Any:
        def ticker(symbol: str) -> dict:
            bid, ask = self.books[symbol]
            return {
                "symbol": symbol,
                "bidPrice": str(bid),
                "bidQty": "12.500",
                "askPrice": str(ask),
                "askQty": "8.200",
                "time": self.now_ms(),
            }

        if "symbol" in params:
            if params["symbol"] not in self.books:
                raise BinanceError(-1121, "Invalid symbol.")
            return ticker(params["symbol"])
        return [ticker(symbol) for symbol in self.books]

    def _leverage_brackets(self, account: Account, params: dict) -> list:
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": 50000,
            "notionalFloor": 0,
            "maintMarginRatio": 0.004,
            "cum": 0.0,
        }
        return [{"symbol": symbol, "brackets": [bracket]} for symbol in self.symbols]

    def _margins(self, symbol: str, position: Position) -> tuple[Decimal, Decimal]:
        notional = self.marks[symbol] * position.amount
        return notional, abs(notional) / LEVERAGE

    def _account_information(self, account: Account, params: dict) -> dict:
        unrealized = self.unrealized(account)
        initial = sum((self._margins(s, p)[1] for (s, _), p in account.positions.items()), Decimal(0))
        margin_balance = account.wallet + unrealized
        available = margin_balance - initial
        usdt = {
            "asset": "USDT",
            "walletBalance": amount(account.wallet),
            "unrealizedProfit": amount(unrealized),
            "marginBalance": amount(margin_balance),
            "maintMargin": amount(initial / 25),
            "initialMargin": amount(initial),
            "positionInitialMargin": amount(initial),
            "openOrderInitialMargin": "0.00000000",
            "crossWalletBalance": amount(account.wallet),
            "crossUnPnl": amount(unrealized),
            "availableBalance": amount(available),
            "maxWithdrawAmount": amount(available),
            "updateTime": self.now_ms(),
        }
        positions = []
        for (symbol, side), position in account.positions.items():
            notional, initial_margin = self._margins(symbol, position)
            positions.append(
                {
                    "symbol": symbol,
                    "positionSide": side,
                    "positionAmt": str(position.amount),
                    "unrealizedProfit": amount(self._unrealized(symbol, position)),
                    "isolatedMargin": "0",
                    "notional": amount(notional),
                    "isolatedWallet": "0",
                    "initialMargin": amount(initial_margin),
                    "maintMargin": amount(initial_margin / 25),
                    "updateTime": position.updated_ms,
                }
            )
        return {
            "totalInitialMargin": usdt["initialMargin"],
            "totalMaintMargin": usdt["maintMargin"],
            "totalWalletBalance": usdt["walletBalance"],
            "totalUnrealizedProfit": usdt["unrealizedProfit"],
            "totalMarginBalance": usdt["marginBalance"],
            "totalPositionInitialMargin": usdt["positionInitialMargin"],
            "totalOpenOrderInitialMargin": "0.00000000",
            "totalCrossWalletBalance": usdt["crossWalletBalance"],
            "totalCrossUnPnl": usdt["crossUnPnl"],
            "availableBalance": usdt["availableBalance"],
            "maxWithdrawAmount": usdt["maxWithdrawAmount"],
            "assets": [usdt],
            "positions": positions,
        }

    def _position_risk(self, account: Account, params: dict) -> list:
        rows = []
        for (symbol, side), position in account.positions.items():
            if "symbol" in params and params["symbol"] != symbol:
                continue
            notional, initial_margin = self._margins(symbol, position)
            rows.append(
                {
                    "symbol": symbol,
                    "positionSide": side,
                    "positionAmt": str(position.amount),
                    "entryPrice": str(position.entry),
                    "breakEvenPrice": str(position.entry),
                    "markPrice": str(self.marks[symbol]),
                    "unRealizedProfit": amount(self._unrealized(symbol, position)),
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": amount(notional),
                    "marginAsset": "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": amount(initial_margin),
                    "maintMargin": amount(initial_margin / 25),
                    "positionInitialMargin": amount(initial_margin),
                    "openOrderInitialMargin": "0",
                    "adl": 1,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": position.updated_ms,
                }
            )
        return rows

    def _user_trades(self, account: Account, params: dict) -> list:
        symbol = params.get("symbol")
        if not symbol:
            raise BinanceError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if "fromId" in params and ("startTime" in params or "endTime" in params):
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        trades = [trade for trade in account.trades if trade["symbol"] == symbol]
        if "orderId" in params:
            trades = [trade for trade in trades if str(trade["orderId"]) == params["orderId"]]
        if "fromId" in params:
            trades = [trade for trade in trades if trade["id"] >= int(params["fromId"])]
        if "startTime" in params:
            trades = [trade for trade in trades if trade["time"] >= int(params["startTime"])]
        if "endTime" in params:
            trades = [trade for trade in trades if trade["time"] <= int(params["endTime"])]
        limit = min(int(params.get("limit", 500)), 1000)
        return trades[:limit] if "fromId" in params or "startTime" in params else trades[-limit:]

    def _query_order(self, account: Account, params: dict) -> dict:
        for order in account.orders:
            if order["symbol"] != params.get("symbol"):
                continue
            if str(order["orderId"]) == params.get("orderId") or order["clientOrderId"] == params.get(
                "origClientOrderId"
            ):
                return order
        raise BinanceError(-2013, "Order does not exist.")

    def _new_order(self, account: Account, params: dict) -> dict:
        symbol = params.get("symbol", "")
        if symbol not in self.symbols:
            raise BinanceError(-1121, "Invalid symbol.")
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        if params.get("type") != "MARKET":
            raise BinanceError(-1116, "Invalid orderType.")
        client_order_id = params.get("newClientOrderId") or f"web_{next(self._order_ids)}"
        if len(client_order_id) > 36 or not all(c.isalnum() or c in ".:/_-" for c in client_order_id):
            raise BinanceError(-4015, "Client order id is not valid.")
        if any(order["clientOrderId"] == client_order_id for order in account.orders):
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        position_side = params.get("positionSide", "BOTH")
        if account.hedge_mode == (position_side == "BOTH"):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        if reduce_only and account.hedge_mode:
            raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
        quantity = Decimal(params.get("quantity", "0"))
        step = self.symbols[symbol].quantity_step
        if quantity <= 0 or quantity % step:
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
        held = account.positions.get((symbol, position_side))
        held_amount = held.amount if held else Decimal(0)
        signed = quantity if side == "BUY" else -quantity
        reduces = (
            held_amount * signed < 0
            if position_side == "BOTH"
            else (position_side == "LONG") == (side == "SELL")
        )
        if (reduce_only or account.hedge_mode and reduces) and (not reduces or quantity > abs(held_amount)):
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        if not reduces:
            price = self.books[symbol][1 if side == "BUY" else 0]
            needed = price * quantity / LEVERAGE
            available = self.equity(account) - sum(
                (self._margins(s, p)[1] for (s, _), p in account.positions.items()), Decimal(0)
            )
            if needed > available:
                raise BinanceError(-2019, "Margin is insufficient.")
        return self._execute_market(
            account, symbol, side, quantity, position_side, client_order_id, reduce_only
        )

    def _execute_market(
        self,
        account: Account,
        symbol: str,
        side: str,
        quantity: Decimal,
        position_side: str,
        client_order_id: str,
        reduce_only: bool = False,
    ) -> dict:
        bid, ask = self.books[symbol]
        price = ask if side == "BUY" else bid
        now = self.now_ms()
        order_id = next(self._order_ids)
        key = (symbol, position_side)
        held = account.positions.get(key)
        held_amount = held.amount if held else Decimal(0)
        signed = quantity if side == "BUY" else -quantity
        closing = min(quantity, abs(held_amount)) if held_amount * signed < 0 else Decimal(0)
        realized = Decimal(0)
        if closing:
            direction = 1 if held_amount > 0 else -1
            realized = ((price - held.entry) * closing * direction).quantize(EIGHT_PLACES, ROUND_HALF_EVEN)
        remaining = held_amount + signed
        if remaining == 0:
            account.positions.pop(key, None)
        elif held is None or held_amount * remaining < 0:
            account.positions[key] = Position(remaining, price, now)
        elif closing:
            held.amount, held.updated_ms = remaining, now
        else:
            entry = (held.entry * abs(held_amount) + price * quantity) / abs(remaining)
            account.positions[key] = Position(remaining, entry.quantize(EIGHT_PLACES, ROUND_HALF_EVEN), now)
        commission = (price * quantity * TAKER_COMMISSION).quantize(EIGHT_PLACES, ROUND_HALF_EVEN)
        account.wallet += realized - commission
        account.trades.append(
            {
                "buyer": side == "BUY",
                "commission": amount(commission),
                "commissionAsset": "USDT",
                "id": next(self._trade_ids),
                "maker": False,
                "orderId": order_id,
                "price": str(price),
                "qty": str(quantity),
                "quoteQty": amount(price * quantity),
                "realizedPnl": amount(realized),
                "side": side,
                "positionSide": position_side,
                "symbol": symbol,
                "time": now,
            }
        )
        order = {
            "orderId": order_id,
            "symbol": symbol,
            "status": "FILLED",
            "clientOrderId": client_order_id,
            "price": "0",
            "avgPrice": str(price),
            "origQty": str(quantity),
            "executedQty": str(quantity),
            "cumQty": str(quantity),
            "cumQuote": amount(price * quantity),
            "timeInForce": "GTC",
            "type": "MARKET",
            "reduceOnly": reduce_only,
            "closePosition": False,
            "side": side,
            "positionSide": position_side,
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": "MARKET",
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": now,
            "updateTime": now,
        }
        account.orders.append(order)
        return order


class _RateLimit(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _handler(exchange: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # the tests' output stays quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            try:
                answer, _, headers = exchange.handle(
                    method, parts.path, parts.query, body, self.headers.get("X-MBX-APIKEY")
                )
            except BinanceError as error:
                self._send(error.status, {"code": error.code, "msg": error.msg})
                return
            except _RateLimit as limit:
                message = f"Too many requests; current limit is {exchange.weight_limit} requests per minute."
                self._send(429, {"code": -1003, "msg": message}, {"Retry-After": str(limit.retry_after)})
                return
            if isinstance(answer, Drop):
                self.close_connection = True
                self.connection.close()
                return
            if isinstance(answer, Delay):
                time.sleep(answer.seconds)
                self.close_connection = True
                self.connection.close()
                return
            if isinstance(answer, ServerError):
                self._send(answer.status, {"code": answer.code, "msg": answer.msg})
                return
            self._send(200, answer, headers)

        def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
