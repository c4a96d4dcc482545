"""A stand-in for MetaQuotes' `MetaTrader5` Python package, for where no terminal can run.

Written from the package's public documentation: the same functions and keyword arguments, the
same constant names and values, answers as named tuples with the documented fields in the
documented order, floats for prices and money, times as whole seconds (and `time_msc`
milliseconds) counted in the broker's server time rather than UTC, and a failed call answering
None with `last_error()` telling why.

`initialize(path=...)` names the terminal: for the real package the terminal64.exe to attach to,
here the SQLite file of a terminal that `tradeguard.bridges.mt5.standin_terminal.StandinTerminal`
created and drives (the account, symbols, prices, the trade copier's positions, the connection,
and what the next `order_send` calls do).

What it models: one hedging account logged in at a time, market orders (`TRADE_ACTION_DEAL`) that
open or close positions, instant or market execution, the symbol's filling-mode flags, volume
limits and the market being closed. Not modelled: pending orders (always none), netting accounts,
bars and ticks history, margin in other currencies than the contract's base or the account's.
"""

from __future__ import annotations

import fnmatch
import os
import sqlite3
import time
from collections import namedtuple
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeguard.bridges.mt5.standin_state import (
    SYMBOL_TRADE_EXECUTION_MARKET,
    TerminalState,
    account_totals,
    closing_price,
    decimal,
    margin_of,
    money,
    profit_at,
)

__author__ = "tradeguard (a stand-in for MetaQuotes Ltd.'s MetaTrader5 package)"
__version__ = "5.0.45"
TERMINAL_BUILD = 4755

TRADE_ACTION_DEAL = 1
TRADE_ACTION_PENDING = 5
TRADE_ACTION_SLTP = 6
TRADE_ACTION_MODIFY = 7
TRADE_ACTION_REMOVE = 8
TRADE_ACTION_CLOSE_BY = 10

ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1
ORDER_TYPE_BUY_LIMIT = 2
ORDER_TYPE_SELL_LIMIT = 3
ORDER_TYPE_BUY_STOP = 4
ORDER_TYPE_SELL_STOP = 5
ORDER_TYPE_BUY_STOP_LIMIT = 6
ORDER_TYPE_SELL_STOP_LIMIT = 7
ORDER_TYPE_CLOSE_BY = 8
POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1

ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
ORDER_FILLING_BOC = 3
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
SYMBOL_FILLING_BOC = 4

ORDER_TIME_GTC = 0
ORDER_TIME_DAY = 1
ORDER_TIME_SPECIFIED = 2
ORDER_TIME_SPECIFIED_DAY = 3

SYMBOL_TRADE_MODE_DISABLED = 0
SYMBOL_TRADE_MODE_LONGONLY = 1
SYMBOL_TRADE_MODE_SHORTONLY = 2
SYMBOL_TRADE_MODE_CLOSEONLY = 3
SYMBOL_TRADE_MODE_FULL = 4
SYMBOL_TRADE_EXECUTION_REQUEST = 0
SYMBOL_TRADE_EXECUTION_INSTANT = 1
SYMBOL_TRADE_EXECUTION_EXCHANGE = 3

ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
ACCOUNT_MARGIN_MODE_EXCHANGE = 1
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
ACCOUNT_TRADE_MODE_DEMO = 0
ACCOUNT_TRADE_MODE_CONTEST = 1
ACCOUNT_TRADE_MODE_REAL = 2

DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_TYPE_BALANCE = 2
DEAL_TYPE_CREDIT = 3
DEAL_TYPE_CHARGE = 4
DEAL_TYPE_CORRECTION = 5
DEAL_TYPE_BONUS = 6
DEAL_TYPE_COMMISSION = 7
DEAL_TYPE_COMMISSION_DAILY = 8
DEAL_TYPE_COMMISSION_MONTHLY = 9
DEAL_TYPE_COMMISSION_AGENT_DAILY = 10
DEAL_TYPE_COMMISSION_AGENT_MONTHLY = 11
DEAL_TYPE_INTEREST = 12
DEAL_TYPE_BUY_CANCELED = 13
DEAL_TYPE_SELL_CANCELED = 14
DEAL_DIVIDEND = 15
DEAL_DIVIDEND_FRANKED = 16
DEAL_TAX = 17
DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3
DEAL_REASON_CLIENT = 0
DEAL_REASON_MOBILE = 1
DEAL_REASON_WEB = 2
DEAL_REASON_EXPERT = 3
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6
DEAL_REASON_ROLLOVER = 7
DEAL_REASON_VMARGIN = 8
DEAL_REASON_SPLIT = 9
POSITION_REASON_CLIENT = 0
POSITION_REASON_MOBILE = 1
POSITION_REASON_WEB = 2
POSITION_REASON_EXPERT = 3

TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_CANCEL = 10007
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_DONE_PARTIAL = 10010
TRADE_RETCODE_ERROR = 10011
TRADE_RETCODE_TIMEOUT = 10012
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_INVALID_PRICE = 10015
TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_TRADE_DISABLED = 10017
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_MONEY = 10019
TRADE_RETCODE_PRICE_CHANGED = 10020
TRADE_RETCODE_PRICE_OFF = 10021
TRADE_RETCODE_INVALID_EXPIRATION = 10022
TRADE_RETCODE_ORDER_CHANGED = 10023
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_SERVER_DISABLES_AT = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_LOCKED = 10028
TRADE_RETCODE_FROZEN = 10029
TRADE_RETCODE_INVALID_FILL = 10030
TRADE_RETCODE_CONNECTION = 10031
TRADE_RETCODE_ONLY_REAL = 10032
TRADE_RETCODE_LIMIT_ORDERS = 10033
TRADE_RETCODE_LIMIT_VOLUME = 10034
TRADE_RETCODE_INVALID_ORDER = 10035
TRADE_RETCODE_POSITION_CLOSED = 10036
TRADE_RETCODE_INVALID_CLOSE_VOLUME = 10038
TRADE_RETCODE_CLOSE_ORDER_EXIST = 10039
TRADE_RETCODE_LIMIT_POSITIONS = 10040
TRADE_RETCODE_REJECT_CANCEL = 10041
TRADE_RETCODE_LONG_ONLY = 10042
TRADE_RETCODE_SHORT_ONLY = 10043
TRADE_RETCODE_CLOSE_ONLY = 10044
TRADE_RETCODE_FIFO_CLOSE = 10045
TRADE_RETCODE_HEDGE_PROHIBITED = 10046

RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NO_MEMORY = -3
RES_E_NOT_FOUND = -4
RES_E_INVALID_VERSION = -5
RES_E_AUTH_FAILED = -6
RES_E_UNSUPPORTED = -7
RES_E_AUTO_TRADING_DISABLED = -8
RES_E_INTERNAL_FAIL = -10000
RES_E_INTERNAL_FAIL_SEND = -10001
RES_E_INTERNAL_FAIL_RECEIVE = -10002
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005

COMMENT_LIMIT = 28
"""The longest `comment` a request may carry. MetaQuotes documents no length; public code reports
`order_send` and `order_check` answering None with (-2, 'Invalid "comment" argument') past 28, 29
or 31 characters depending on the terminal's build, the request never reaching the server. The
stand-in takes the shortest reported; `StandinTerminal.set_comment_limit` sets another."""

TerminalInfo = namedtuple(
    "TerminalInfo",
    "community_account community_connection connected dlls_allowed trade_allowed tradeapi_disabled "
    "email_enabled ftp_enabled notifications_enabled mqid build maxbars codepage ping_last "
    "community_balance retransmission company name language path data_path commondata_path",
)
AccountInfo = namedtuple(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode "
    "currency_digits fifo_close balance credit profit equity margin margin_free margin_level "
    "margin_so_call margin_so_so margin_initial margin_maintenance assets liabilities "
    "commission_blocked name server currency company",
)
_SYMBOL_INFO_FIELDS = (
    "custom chart_mode select visible session_deals session_buy_orders session_sell_orders volume "
    "volumehigh volumelow time digits spread spread_float ticks_bookdepth trade_calc_mode trade_mode "
    "start_time expiration_time trade_stops_level trade_freeze_level trade_exemode swap_mode "
    "swap_rollover3days margin_hedged_use_leg expiration_mode filling_mode order_mode order_gtc_mode "
    "option_mode option_right bid bidhigh bidlow ask askhigh asklow last lasthigh lastlow volume_real "
    "volumehigh_real volumelow_real option_strike point trade_tick_value trade_tick_value_profit "
    "trade_tick_value_loss trade_tick_size trade_contract_size trade_accrued_interest trade_face_value "
    "trade_liquidity_rate volume_min volume_max volume_step volume_limit swap_long swap_short "
    "margin_initial margin_maintenance session_volume session_turnover session_interest "
    "session_buy_orders_volume session_sell_orders_volume session_open session_close session_aw "
    "session_price_settlement session_price_limit_min session_price_limit_max margin_hedged "
    "price_change price_volatility price_theoretical price_greeks_delta price_greeks_theta "
    "price_greeks_gamma price_greeks_vega price_greeks_rho price_greeks_omega price_sensitivity basis "
    "category currency_base currency_profit currency_margin bank description exchange formula isin "
    "name page path"
)
SymbolInfo = namedtuple("SymbolInfo", _SYMBOL_INFO_FIELDS)
Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
TradePosition = namedtuple(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open "
    "sl tp price_current swap profit symbol comment external_id",
)
TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission swap "
    "profit fee symbol comment external_id",
)
TradeRequest = namedtuple(
    "TradeRequest",
    "action magic order symbol volume price stoplimit sl tp deviation type type_filling type_time "
    "expiration comment position position_by",
)
OrderSendResult = namedtuple(
    "OrderSendResult", "retcode deal order volume price bid ask comment request_id retcode_external request"
)
OrderCheckResult = namedtuple(
    "OrderCheckResult", "retcode balance equity profit margin margin_free margin_level comment request"
)

_REQUEST_DEFAULTS = {
    "action": 0,
    "magic": 0,
    "order": 0,
    "symbol": "",
    "volume": 0.0,
    "price": 0.0,
    "stoplimit": 0.0,
    "sl": 0.0,
    "tp": 0.0,
    "deviation": 0,
    "type": 0,
    "type_filling": 0,
    "type_time": 0,
    "expiration": 0,
    "comment": "",
    "position": 0,
    "position_by": 0,
}
_RETCODE_COMMENTS = {
    TRADE_RETCODE_REQUOTE: "Requote",
    TRADE_RETCODE_REJECT: "Request rejected",
    TRADE_RETCODE_PLACED: "Order placed",
    TRADE_RETCODE_DONE: "Request executed",
    TRADE_RETCODE_DONE_PARTIAL: "Request executed partially",
    TRADE_RETCODE_TIMEOUT: "Request canceled by timeout",
    TRADE_RETCODE_INVALID: "Invalid request",
    TRADE_RETCODE_INVALID_VOLUME: "Invalid volume",
    TRADE_RETCODE_INVALID_PRICE: "Invalid price",
    TRADE_RETCODE_TRADE_DISABLED: "Trade disabled",
    TRADE_RETCODE_MARKET_CLOSED: "Market closed",
    TRADE_RETCODE_NO_MONEY: "No money",
    TRADE_RETCODE_PRICE_CHANGED: "Prices changed",
    TRADE_RETCODE_PRICE_OFF: "Off quotes",
    TRADE_RETCODE_CLIENT_DISABLES_AT: "AutoTrading disabled by client",
    TRADE_RETCODE_INVALID_FILL: "Unsupported filling mode",
    TRADE_RETCODE_CONNECTION: "No connection",
    TRADE_RETCODE_POSITION_CLOSED: "Position doesn't exist",
    TRADE_RETCODE_INVALID_CLOSE_VOLUME: "Invalid close volume",
}
_SUCCESS = (RES_S_OK, "Success")
_NO_IPC = (RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
_HANG_LIMIT_SECONDS = 600

_terminal: TerminalState | None = None
_last_error: tuple[int, str] = _SUCCESS


class _Failed(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.error = (code, description)


def _answer(call):
    """A call's answer, or its failure as None with `last_error()` set, as the package reports."""
    global _last_error
    try:
        result = call()
    except _Failed as failure:
        _last_error = failure.error
        return None
    _last_error = _SUCCESS
    return result


def _attached() -> TerminalState:
    if _terminal is None or not _terminal.terminal()["running"]:
        raise _Failed(*_NO_IPC)
    return _terminal


def _logged_in() -> tuple[TerminalState, sqlite3.Row]:
    terminal = _attached()
    account = terminal.account()
    if account is None:
        raise _Failed(RES_E_AUTH_FAILED, "Terminal: Authorization failed")
    return terminal, account


def _log_in(terminal: TerminalState, login: int, password: str | None, server: str | None) -> None:
    with terminal.transaction() as db:
        account = db.execute("SELECT * FROM accounts WHERE login = ?", (login,)).fetchone()
        if (
            account is None
            or (password is not None and password != account["password"])
            or (server is not None and server != account["server"])
        ):
            raise _Failed(RES_E_AUTH_FAILED, "Terminal: Authorization failed")
        terminal.set_terminal(db, login=login)


def initialize(
    path: str | None = None,
    *,
    login: int | None = None,
    password: str | None = None,
    server: str | None = None,
    timeout: int = 60_000,
    portable: bool = False,
) -> bool:
    """Attach to the terminal whose file is `path`, optionally logging in to `login`."""

    def attach() -> bool:
        global _terminal
        if path is None or not Path(path).is_file():
            raise _Failed(RES_E_INTERNAL_FAIL_INIT, "IPC initialize failed, MetaTrader 5 x64 not found")
        terminal = TerminalState(Path(path))
        if not terminal.terminal()["running"]:
            terminal.close()
            raise _Failed(RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
        if login is not None:
            try:
                _log_in(terminal, login, password, server)
            except _Failed:
                terminal.close()
                raise
        if _terminal is not None:
            _terminal.close()
        _terminal = terminal
        return True

    return bool(_answer(attach))


def login(login: int, password: str | None = None, server: str | None = None, timeout: int = 60_000) -> bool:
    return bool(_answer(lambda: _log_in(_attached(), login, password, server) or True))


def shutdown() -> None:
    global _terminal
    if _terminal is not None:
        _terminal.close()
        _terminal = None


def version() -> tuple[int, int, str] | None:
    def read() -> tuple[int, int, str]:
        _attached()
        return (500, TERMINAL_BUILD, "25 Nov 2025")

    return _answer(read)


def last_error() -> tuple[int, str]:
    return _last_error


def terminal_info() -> TerminalInfo | None:
    def read() -> TerminalInfo:
        terminal = _attached()
        row = terminal.terminal()
        folder = str(terminal.path.parent)
        return TerminalInfo(
            community_account=False,
            community_connection=False,
            connected=bool(row["connected"]),
            dlls_allowed=False,
            trade_allowed=bool(row["algo_trading"]),
            tradeapi_disabled=bool(row["tradeapi_disabled"]),
            email_enabled=False,
            ftp_enabled=False,
            notifications_enabled=False,
            mqid=False,
            build=TERMINAL_BUILD,
            maxbars=100_000,
            codepage=0,
            ping_last=25_000 if row["connected"] else 0,
            community_balance=0.0,
            retransmission=0.0,
            company="tradeguard stand-in",
            name="MetaTrader 5",
            language="English",
            path=folder,
            data_path=folder,
            commondata_path=folder,
        )

    return _answer(read)


def account_info() -> AccountInfo | None:
    def read() -> AccountInfo:
        terminal, account = _logged_in()
        totals = account_totals(terminal, account)
        free = totals["equity"] - totals["margin"]
        level = totals["equity"] / totals["margin"] * 100 if totals["margin"] else Decimal(0)
        return AccountInfo(
            login=account["login"],
            trade_mode=ACCOUNT_TRADE_MODE_DEMO,
            leverage=account["leverage"],
            limit_orders=200,
            margin_so_mode=0,
            trade_allowed=True,
            trade_expert=True,
            margin_mode=account["margin_mode"],
            currency_digits=account["currency_digits"],
            fifo_close=False,
            balance=float(totals["balance"]),
            credit=float(decimal(account["credit"])),
            profit=float(totals["profit"]),
            equity=float(totals["equity"]),
            margin=float(totals["margin"]),
            margin_free=float(free),
            margin_level=float(level),
            margin_so_call=50.0,
            margin_so_so=30.0,
            margin_initial=0.0,
            margin_maintenance=0.0,
            assets=0.0,
            liabilities=0.0,
            commission_blocked=0.0,
            name=account["name"],
            server=account["server"],
            currency=account["currency"],
            company=account["company"],
        )

    return _answer(read)


def _in_group(name: str, group: str | None) -> bool:
    """The documented group filter: comma-separated masks with `*`, `!` excluding, applied in order."""
    if group is None:
        return True
    selected = False
    for condition in (part.strip() for part in group.split(",")):
        if condition.startswith("!"):
            if fnmatch.fnmatchcase(name, condition[1:]):
                selected = False
        elif fnmatch.fnmatchcase(name, condition):
            selected = True
    return selected


def symbols_total() -> int:
    return _answer(lambda: len(_attached().symbols())) or 0


def symbols_get(group: str | None = None) -> tuple[SymbolInfo, ...] | None:
    return _answer(
        lambda: tuple(_symbol_info(row) for row in _attached().symbols() if _in_group(row["name"], group))
    )


def _symbol_info(row: sqlite3.Row) -> SymbolInfo:
    values = dict.fromkeys(SymbolInfo._fields, 0)
    point = Decimal(1).scaleb(-row["digits"])
    bid, ask = decimal(row["bid"]), decimal(row["ask"])
    tick_value = float(decimal(row["tick_value"]))
    text_fields = "basis category bank exchange formula isin page path"
    values.update(dict.fromkeys(text_fields.split(), ""))
    values.update(
        custom=False,
        select=bool(row["visible"]),
        visible=bool(row["visible"]),
        spread_float=True,
        margin_hedged_use_leg=False,
        time=row["tick_time_msc"] // 1000,
        digits=row["digits"],
        spread=int((ask - bid) / point),
        trade_mode=row["trade_mode"],
        trade_exemode=row["trade_exemode"],
        filling_mode=row["filling_mode"],
        expiration_mode=15,
        order_mode=127,
        bid=float(bid),
        ask=float(ask),
        point=float(point),
        trade_tick_value=tick_value,
        trade_tick_value_profit=tick_value,
        trade_tick_value_loss=tick_value,
        trade_tick_size=float(decimal(row["tick_size"])),
        trade_contract_size=float(decimal(row["contract_size"])),
        volume_min=float(decimal(row["volume_min"])),
        volume_max=float(decimal(row["volume_max"])),
        volume_step=float(decimal(row["volume_step"])),
        margin_hedged=float(decimal(row["contract_size"])),
        currency_base=row["currency_base"],
        currency_profit=row["currency_profit"],
        currency_margin=row["currency_base"],
        description=row["description"],
        name=row["name"],
        path=f"Forex\\{row['name']}",
    )
    for name in ("bidhigh", "bidlow", "askhigh", "asklow"):
        values[name] = values[name[:3]]
    return SymbolInfo(**values)


def _known_symbol(terminal: TerminalState, symbol: str) -> sqlite3.Row:
    row = terminal.symbol(symbol)
    if row is None:
        raise _Failed(RES_E_NOT_FOUND, "Terminal: Not found")
    return row


def symbol_info(symbol: str) -> SymbolInfo | None:
    return _answer(lambda: _symbol_info(_known_symbol(_attached(), symbol)))


def symbol_info_tick(symbol: str) -> Tick | None:
    def read() -> Tick:
        row = _known_symbol(_attached(), symbol)
        if not row["visible"]:
            # Ticks come only for symbols selected in the Market Watch.
            raise _Failed(RES_E_NOT_FOUND, "Terminal: Not found")
        return Tick(
            time=row["tick_time_msc"] // 1000,
            bid=float(decimal(row["bid"])),
            ask=float(decimal(row["ask"])),
            last=0.0,
            volume=0,
            time_msc=row["tick_time_msc"],
            flags=6,
            volume_real=0.0,
        )

    return _answer(read)


def symbol_select(symbol: str, enable: bool = True) -> bool:
    def select() -> bool:
        terminal = _attached()
        _known_symbol(terminal, symbol)
        account = terminal.account()
        held = account is not None and any(
            row["symbol"] == symbol for row in terminal.positions(account["login"])
        )
        if not enable and held:
            # "A symbol cannot be removed if ... positions are opened on it."
            raise _Failed(RES_E_FAIL, "Terminal: Call failed")
        with terminal.transaction() as db:
            db.execute("UPDATE symbols SET visible = ? WHERE name = ?", (int(enable), symbol))
        return True

    return bool(_answer(select))


def _trade_position(terminal: TerminalState, account: sqlite3.Row, row: sqlite3.Row) -> TradePosition:
    symbol = terminal.symbol(row["symbol"])
    price = closing_price(row, symbol)
    return TradePosition(
        ticket=row["ticket"],
        time=row["time_msc"] // 1000,
        time_msc=row["time_msc"],
        time_update=row["time_update_msc"] // 1000,
        time_update_msc=row["time_update_msc"],
        type=row["type"],
        magic=row["magic"],
        identifier=row["identifier"],
        reason=row["reason"],
        volume=float(decimal(row["volume"])),
        price_open=float(decimal(row["price_open"])),
        sl=float(decimal(row["sl"])),
        tp=float(decimal(row["tp"])),
        price_current=float(price),
        swap=float(decimal(row["swap"])),
        profit=float(profit_at(row, symbol, account, price)),
        symbol=row["symbol"],
        comment=row["comment"],
        external_id=row["external_id"],
    )


def _collection(terminal: TerminalState, items: tuple) -> tuple | None:
    """An empty answer is () as documented, or None with `last_error()` (1, 'Success') where the
    terminal was set to answer as some builds are reported to."""
    if not items and terminal.terminal()["empty_as_none"]:
        return None
    return items


def positions_total() -> int:
    def count() -> int:
        terminal, account = _logged_in()
        return len(terminal.positions(account["login"]))

    return _answer(count) or 0


def positions_get(
    *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
) -> tuple[TradePosition, ...] | None:
    def read() -> tuple[TradePosition, ...]:
        terminal, account = _logged_in()
        rows = terminal.positions(account["login"])
        if symbol is not None:
            rows = [row for row in rows if row["symbol"] == symbol]
        elif ticket is not None:
            rows = [row for row in rows if row["ticket"] == ticket]
        rows = [row for row in rows if _in_group(row["symbol"], group)]
        return _collection(terminal, tuple(_trade_position(terminal, account, row) for row in rows))

    return _answer(read)


def orders_total() -> int:
    """Pending orders: the stand-in never holds any."""
    return 0


def orders_get(
    *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
) -> tuple | None:
    """Pending orders: the stand-in never holds any."""

    def read() -> tuple | None:
        terminal, _ = _logged_in()
        return _collection(terminal, ())

    return _answer(read)


def _server_seconds(moment: datetime | int | float) -> int:
    """A bound of a history request: a datetime (naive ones in the local zone, as Python reads
    them) or seconds since 1970, compared with deal times as the terminal keeps them."""
    if isinstance(moment, datetime):
        return int(moment.timestamp())
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        return int(moment)
    raise _Failed(RES_E_INVALID_PARAMS, "Invalid arguments")


def trade_deal(row: sqlite3.Row) -> TradeDeal:
    return TradeDeal(
        ticket=row["ticket"],
        order=row["order_ticket"],
        time=row["time_msc"] // 1000,
        time_msc=row["time_msc"],
        type=row["type"],
        entry=row["entry"],
        magic=row["magic"],
        position_id=row["position_id"],
        reason=row["reason"],
        volume=float(decimal(row["volume"])),
        price=float(decimal(row["price"])),
        commission=float(decimal(row["commission"])),
        swap=float(decimal(row["swap"])),
        profit=float(decimal(row["profit"])),
        fee=float(decimal(row["fee"])),
        symbol=row["symbol"],
        comment=row["comment"],
        external_id=row["external_id"],
    )


def history_deals_get(
    date_from: datetime | int | None = None,
    date_to: datetime | int | None = None,
    *,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> tuple[TradeDeal, ...] | None:
    """Deals by time interval (`group` filtering), by order ticket (`DEAL_ORDER`) or by position
    (`DEAL_POSITION_ID`)."""

    def read() -> tuple[TradeDeal, ...]:
        terminal, account = _logged_in()
        rows = terminal.deals(account["login"])
        if ticket is not None:
            rows = [row for row in rows if row["order_ticket"] == ticket]
        elif position is not None:
            rows = [row for row in rows if row["position_id"] == position]
        else:
            if date_from is None or date_to is None:
                raise _Failed(RES_E_INVALID_PARAMS, "Invalid arguments")
            start, end = _server_seconds(date_from), _server_seconds(date_to)
            rows = [
                row
                for row in rows
                if start <= row["time_msc"] // 1000 <= end and _in_group(row["symbol"], group)
            ]
        return _collection(terminal, tuple(trade_deal(row) for row in rows))

    return _answer(read)


def history_deals_total(date_from: datetime | int, date_to: datetime | int) -> int | None:
    deals = history_deals_get(date_from, date_to)
    return None if deals is None and _last_error != _SUCCESS else len(deals or ())


class _Refused(Exception):
    def __init__(self, retcode: int) -> None:
        super().__init__(_RETCODE_COMMENTS.get(retcode, "Request rejected"))
        self.retcode = retcode


def _trade_request(terminal: TerminalState, request: Any) -> TradeRequest:
    """The request as the package reads it, refused (-2, -8) before it reaches the trade server."""
    if not isinstance(request, dict):
        raise _Failed(RES_E_INVALID_PARAMS, "Invalid arguments")
    unknown = set(request) - set(_REQUEST_DEFAULTS)
    if unknown:
        raise _Failed(RES_E_INVALID_PARAMS, f'Invalid "{sorted(unknown)[0]}" argument')
    comment = request.get("comment", "")
    if not isinstance(comment, str) or len(comment) > terminal.terminal()["comment_limit"]:
        raise _Failed(RES_E_INVALID_PARAMS, 'Invalid "comment" argument')
    if terminal.terminal()["tradeapi_disabled"]:
        # The terminal's "Disable automatic trading via external Python API" option.
        raise _Failed(RES_E_AUTO_TRADING_DISABLED, "Terminal: Autotrading disabled")
    return TradeRequest(**{**_REQUEST_DEFAULTS, **request})


def _lots(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _validate(terminal: TerminalState, db, account, request: TradeRequest):
    """The checks the terminal and the trade server make, in the order a request meets them.

    Returns the symbol row, the position closed (None for an opening order), the volume and the price."""
    row = terminal.terminal(db)
    if not row["algo_trading"]:
        raise _Refused(TRADE_RETCODE_CLIENT_DISABLES_AT)
    if not row["connected"]:
        raise _Refused(TRADE_RETCODE_CONNECTION)
    if request.action != TRADE_ACTION_DEAL or request.type not in (ORDER_TYPE_BUY, ORDER_TYPE_SELL):
        raise _Refused(TRADE_RETCODE_INVALID)
    symbol = terminal.symbol(request.symbol, db)
    if symbol is None:
        raise _Refused(TRADE_RETCODE_INVALID)
    position = None
    if request.position:
        position = terminal.position(request.position, account["login"], db)
        if position is None:
            raise _Refused(TRADE_RETCODE_POSITION_CLOSED)
        if position["symbol"] != request.symbol or position["type"] == request.type:
            raise _Refused(TRADE_RETCODE_INVALID)
    if symbol["trade_mode"] == SYMBOL_TRADE_MODE_DISABLED:
        raise _Refused(TRADE_RETCODE_TRADE_DISABLED)
    if not symbol["market_open"]:
        raise _Refused(TRADE_RETCODE_MARKET_CLOSED)
    volume = _lots(request.volume)
    step = decimal(symbol["volume_step"])
    if not (decimal(symbol["volume_min"]) <= volume <= decimal(symbol["volume_max"])) or volume % step:
        raise _Refused(TRADE_RETCODE_INVALID_VOLUME)
    if position is not None and volume > decimal(position["volume"]):
        raise _Refused(TRADE_RETCODE_INVALID_CLOSE_VOLUME)
    if not _filling_allowed(symbol, request.type_filling):
        raise _Refused(TRADE_RETCODE_INVALID_FILL)
    price = decimal(symbol["ask"] if request.type == ORDER_TYPE_BUY else symbol["bid"])
    if symbol["trade_exemode"] != SYMBOL_TRADE_EXECUTION_MARKET:
        if request.price <= 0:
            raise _Refused(TRADE_RETCODE_INVALID_PRICE)
        allowed = Decimal(request.deviation) * Decimal(1).scaleb(-symbol["digits"])
        if abs(Decimal(repr(float(request.price))) - price) > allowed:
            raise _Refused(TRADE_RETCODE_REQUOTE)
    if position is None:
        required = margin_of({"volume": str(volume), "price_open": str(price)}, symbol, account)
        totals = account_totals(terminal, account, db)
        if totals["equity"] - totals["margin"] < required:
            raise _Refused(TRADE_RETCODE_NO_MONEY)
    return symbol, position, volume, price


def _filling_allowed(symbol: sqlite3.Row, filling: int) -> bool:
    """The fill policies a market order may carry, by the symbol's execution mode, as MetaTrader 5's
    Help tabulates them ("Fill Policy"): under instant and request execution Fill or Kill only;
    under market and exchange execution FOK and IOC where the symbol's `SYMBOL_FILLING_*` flags
    allow them; Return for market orders only under exchange execution. The MQL5 reference
    (SYMBOL_FILLING_MODE) reads more leniently: FOK "always used" under instant and request
    execution, Return "always allowed" under market execution. The stricter reading is modelled,
    as the one a test can tell from the other."""
    if symbol["trade_exemode"] in (SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT):
        return filling == ORDER_FILLING_FOK
    if filling == ORDER_FILLING_RETURN:
        return symbol["trade_exemode"] == SYMBOL_TRADE_EXECUTION_EXCHANGE
    flag = {ORDER_FILLING_FOK: SYMBOL_FILLING_FOK, ORDER_FILLING_IOC: SYMBOL_FILLING_IOC}.get(filling, 0)
    return bool(symbol["filling_mode"] & flag)


def execute_deal(
    terminal: TerminalState,
    db,
    account: sqlite3.Row,
    symbol: sqlite3.Row,
    *,
    order_type: int,
    volume: Decimal,
    price: Decimal,
    position: sqlite3.Row | None,
    magic: int,
    comment: str,
    reason: int,
    commission: Decimal = Decimal(0),
) -> tuple[int, int]:
    """Fill a market deal: open a position, or close `volume` of one, realizing its profit and
    its share of the swap into the balance. Returns (deal ticket, order ticket)."""
    order = terminal.next_ticket(db)
    now = terminal.server_msc(db)
    if position is None:
        db.execute(
            "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, '0', '0', '0', ?, ?, ?, ?, ?, '')",
            (
                order,
                order,
                account["login"],
                symbol["name"],
                order_type,
                str(volume),
                str(price),
                magic,
                comment,
                reason,
                now,
                now,
            ),
        )
        profit = swap = Decimal(0)
        entry, position_id = DEAL_ENTRY_IN, order
    else:
        held = decimal(position["volume"])
        profit = profit_at(position, symbol, account, price, volume)
        swap = money(decimal(position["swap"]) * volume / held, account)
        entry, position_id = DEAL_ENTRY_OUT, position["identifier"]
        if volume == held:
            db.execute("DELETE FROM positions WHERE ticket = ?", (position["ticket"],))
        else:
            db.execute(
                "UPDATE positions SET volume = ?, swap = ?, time_update_msc = ? WHERE ticket = ?",
                (str(held - volume), str(decimal(position["swap"]) - swap), now, position["ticket"]),
            )
        balance = decimal(account["balance"]) + profit + swap + commission
        db.execute("UPDATE accounts SET balance = ? WHERE login = ?", (str(balance), account["login"]))
    deal = terminal.insert_deal(
        db,
        login=account["login"],
        order_ticket=order,
        time_msc=now,
        type=order_type,
        entry=entry,
        magic=magic,
        position_id=position_id,
        reason=reason,
        volume=str(volume),
        price=str(price),
        commission=str(commission),
        swap=str(swap),
        profit=str(profit),
        fee="0",
        symbol=symbol["name"],
        comment=comment,
        external_id="",
    )
    return deal, order


def _result(
    retcode: int, request: TradeRequest, symbol, request_id: int, deal=0, order=0, volume=0.0, price=0.0
):
    bid = float(decimal(symbol["bid"])) if symbol is not None else 0.0
    ask = float(decimal(symbol["ask"])) if symbol is not None else 0.0
    return OrderSendResult(
        retcode=retcode,
        deal=deal,
        order=order,
        volume=volume,
        price=price,
        bid=bid,
        ask=ask,
        comment=_RETCODE_COMMENTS.get(retcode, "Request rejected"),
        request_id=request_id,
        retcode_external=0,
        request=request,
    )


def order_send(request: dict[str, Any]) -> OrderSendResult | None:
    """Send a trade request; the answer is the trade server's, or None when it never came back.

    What the next calls answer can be scripted (`StandinTerminal.script_*`): a requote, a refusal,
    a partial fill, an execution whose answer is lost, one after which the terminal hangs.
    """
    lost: tuple[int, str] | None = None
    hang = False

    def send() -> OrderSendResult | None:
        nonlocal hang, lost
        terminal, account = _logged_in()
        trade_request = _trade_request(terminal, request)
        with terminal.transaction() as db:
            seq = terminal.record_request(db, request, os.getpid())
            request_id = terminal.next_request_id(db)
            symbol = terminal.symbol(trade_request.symbol, db)
            try:
                symbol, position, volume, price = _validate(terminal, db, account, trade_request)
            except _Refused as refusal:
                terminal.record_retcode(db, seq, refusal.retcode)
                return _result(refusal.retcode, trade_request, symbol, request_id)
            behaviour = terminal.next_scripted_answer(db) or {"kind": "execute"}
            kind = behaviour["kind"]
            if kind in ("requote", "refuse"):
                retcode = behaviour.get("retcode", TRADE_RETCODE_REQUOTE)
                terminal.record_retcode(db, seq, retcode)
                return _result(retcode, trade_request, symbol, request_id)
            retcode = TRADE_RETCODE_DONE
            if kind == "partial":
                volume = min(volume, Decimal(behaviour["volume"]))
                retcode = TRADE_RETCODE_DONE_PARTIAL
            reason = DEAL_REASON_EXPERT
            deal, order = execute_deal(
                terminal,
                db,
                account,
                symbol,
                order_type=trade_request.type,
                volume=volume,
                price=price,
                position=position,
                magic=trade_request.magic,
                comment=trade_request.comment,
                reason=reason,
            )
            if kind in ("lose_answer", "lose_terminal", "hang"):
                # Executed and committed: only the answer is lost.
                terminal.record_retcode(db, seq, None)
                lost = (RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
                if kind == "lose_terminal":
                    terminal.set_terminal(db, running=0)
                    lost = _NO_IPC
                hang = kind == "hang"
                return None
            terminal.record_retcode(db, seq, retcode)
            return _result(
                retcode, trade_request, symbol, request_id, deal, order, float(volume), float(price)
            )

    answer = _answer(send)
    if hang:
        # The answer never comes: a test kills the process meanwhile.
        time.sleep(_HANG_LIMIT_SECONDS)
    if lost is not None:
        global _last_error
        _last_error = lost
    return answer


def order_check(request: dict[str, Any]) -> OrderCheckResult | None:
    """Whether the request would pass, without sending it (retcode 0 when it would)."""

    def check() -> OrderCheckResult:
        terminal, account = _logged_in()
        trade_request = _trade_request(terminal, request)
        with terminal.transaction() as db:
            try:
                _validate(terminal, db, account, trade_request)
                retcode, comment = 0, "Done"
            except _Refused as refusal:
                retcode, comment = refusal.retcode, str(refusal)
            totals = account_totals(terminal, account, db)
        free = totals["equity"] - totals["margin"]
        return OrderCheckResult(
            retcode=retcode,
            balance=float(totals["balance"]),
            equity=float(totals["equity"]),
            profit=float(totals["profit"]),
            margin=float(totals["margin"]),
            margin_free=float(free),
            margin_level=float(totals["equity"] / totals["margin"] * 100) if totals["margin"] else 0.0,
            comment=comment,
            request=trade_request,
        )

    return _answer(check)
