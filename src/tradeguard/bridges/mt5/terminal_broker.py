"""A MetaTrader 5 terminal as a bridge's broker, through the `MetaTrader5` Python package.

The package hands out floats and times in the broker's server time; the bridge sends tradeguard
exact decimals (quantized to the symbol's digits and the account currency's) and UTC.

Closing is at most once: before sending, look for the position and for a deal whose comment names
the command; after an answer that may hide an execution (none at all, 10008, 10012, 10031, a
partial fill under ORDER_FILLING_RETURN), look again and never send a second order. None with
last_error -2 or -8 is a refusal before sending; 10030 and requotes executed nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from tradeguard.bridges.broker import (
    AccountReading,
    BrokerUnavailable,
    CloseOrder,
    CloseOutcome,
    OutcomeStatus,
    ReadFailed,
)
from tradeguard.bridges.mt5.settings import Mt5Settings
from tradeguard.domain.model import MAX_COMMENT_LENGTH, MAX_MAGIC, has_control_character

logger = logging.getLogger("tradeguard.bridges.mt5")

DEAL_LOOKBACK = timedelta(hours=24)
"""The first reading reports the closes of the day before it: tradeguard counts a deal sent twice once."""
DEAL_OVERLAP = timedelta(minutes=10)
"""Each reading asks again for the deals of the last minutes: a deal can enter the history late."""
OFFSET_RECHECK = timedelta(hours=1)
QUARTER_HOUR = 900
COMMENT_PREFIX = "tg close "
COMMENT_ID_DIGITS = 16
"""`tg close ` and 16 hex digits of the command id: 25 characters. MetaQuotes documents no limit;
terminals are reported to refuse (-2, 'Invalid "comment" argument') past 28 to 31 by build."""

RETCODE_DONE = 10009
RETCODE_DONE_PARTIAL = 10010
RETCODE_INVALID_FILL = 10030
RETRIED_AT_A_FRESH_TICK = {10004, 10020, 10021}
"""Requote, prices changed, off quotes: nothing executed, the price moved."""
OUTCOME_HIDDEN = {10008, 10012, 10031}
"""Placed (working at the server, not yet filled), timeout, no connection: the order may execute
or have executed."""
IPC_ERRORS = {-10000, -10001, -10002, -10003, -10004, -10005}
RES_S_OK = 1
REFUSED_BEFORE_SENDING = {-2, -8}
"""RES_E_INVALID_PARAMS, RES_E_AUTO_TRADING_DISABLED: the package or the terminal refused the request."""
COLLECTIONS = {"positions_get", "orders_get", "history_deals_get"}
"""Calls whose empty answer some terminals give as None with last_error (1, 'Success')."""
RETRY_PAUSE_SECONDS = 0.2


def command_comment(command_id: str) -> str:
    return COMMENT_PREFIX + command_id.replace("-", "")[:COMMENT_ID_DIGITS]


def _exact(value: float, digits: int) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits))


def _digits_of_step(step: float) -> int:
    return max(0, -Decimal(repr(float(step))).normalize().as_tuple().exponent)


@dataclass(frozen=True, slots=True)
class _Symbol:
    digits: int
    volume_digits: int


class TerminalBroker:
    """One MT5 account in one terminal. Not thread-safe: the runtime calls it from one thread."""

    def __init__(
        self,
        package: ModuleType | Any,
        settings: Mt5Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        offset_recheck: timedelta = OFFSET_RECHECK,
    ):
        self._mt5 = package
        self._settings = settings
        self._sleep = sleep
        self._offset_recheck = offset_recheck
        self._attached = False
        self._symbols: dict[str, _Symbol] = {}
        self._currency_digits = 2
        self._offset_seconds = settings.server_utc_offset_seconds
        self._offset_checked_at: datetime | None = None
        self._offset_tick_msc: int | None = None
        self._deals_since: datetime | None = None
        self._reported_deals: dict[int, int] = {}
        """Deal ticket → its time (server seconds), for the deals already in a reading."""

    @property
    def description(self) -> str:
        server = f" at {self._settings.server}" if self._settings.server else ""
        return f"mt5 login {self._settings.login}{server}"

    def connect(self) -> None:
        options: dict[str, Any] = {"login": self._settings.login}
        if self._settings.password is not None:
            options["password"] = self._settings.password
        if self._settings.server is not None:
            options["server"] = self._settings.server
        arguments = (self._settings.path,) if self._settings.path else ()
        if not self._mt5.initialize(*arguments, **options):
            code, description = self._mt5.last_error()
            raise BrokerUnavailable(f"initialize() failed: {code} {description}")
        self._attached = True
        if self._settings.server_utc_offset_seconds is not None:
            logger.info(
                "%s: server time is %s (configured)", self.description, _utc_offset(self._offset_seconds)
            )
        else:
            logger.info(
                "%s: server time offset derived from the ticks of %s, re-checked every hour",
                self.description,
                ", ".join(self._settings.watch),
            )

    def disconnect(self) -> None:
        if self._attached:
            self._mt5.shutdown()
            self._attached = False

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The package's answer; None (a failed call) raises ReadFailed with `last_error()`, but
        for a list with nothing in it, which some terminals answer None with success."""
        if not self._attached:
            try:
                self.connect()
            except BrokerUnavailable as error:
                raise ReadFailed(str(error)) from None
        answer = getattr(self._mt5, name)(*args, **kwargs)
        if answer is None:
            code, description = self._mt5.last_error()
            if code == RES_S_OK and name in COLLECTIONS:
                return ()
            if code in IPC_ERRORS:
                self._attached = False
            raise ReadFailed(f"{name}() answered None: last_error {code} {description}")
        return answer

    def read(self, now: datetime) -> AccountReading:
        terminal = self._call("terminal_info")
        if not terminal.connected:
            raise ReadFailed(
                "the terminal is not connected to the trade server: its account data may be stale"
            )
        account = self._call("account_info")
        if account.login != self._settings.login:
            raise ReadFailed(
                f"the terminal is logged in to account {account.login}, not to the configured {self._settings.login}"
            )
        self._currency_digits = account.currency_digits
        positions = self._call("positions_get")
        ticks = {}
        for name in dict.fromkeys([*(position.symbol for position in positions), *self._settings.watch]):
            self._symbol(name)
            try:
                ticks[name] = self._call("symbol_info_tick", name)
            except ReadFailed:
                # Selected again at the next reading: a restarted terminal may have dropped it.
                self._symbols.pop(name, None)
                raise
        offset = self._server_offset(now, ticks)
        money = account.currency_digits
        snapshot = {
            "taken_at": now,
            "balance": _exact(account.balance, money),
            "equity": _exact(account.equity, money),
            "margin": _exact(account.margin, money),
            "currency": account.currency,
            "positions": [self._position(position, offset) for position in positions],
            "quotes": [
                self._quote(name, tick)
                for name, tick in ticks.items()
                if tick.bid > 0 and tick.ask >= tick.bid
            ],
        }
        deals, reported, window_start = self._closed_deals(now, offset)
        self._reported_deals = {ticket: at for ticket, at in reported.items() if at >= window_start}
        self._deals_since = now
        return AccountReading(snapshot, deals)

    def _symbol(self, name: str) -> _Symbol:
        """The symbol's digits, and made visible in the Market Watch, without which it has no ticks."""
        known = self._symbols.get(name)
        if known is not None:
            return known
        info = self._call("symbol_info", name)
        if not info.visible and not self._mt5.symbol_select(name, True):
            code, description = self._mt5.last_error()
            raise ReadFailed(f"symbol_select({name!r}, True) failed: last_error {code} {description}")
        known = _Symbol(info.digits, _digits_of_step(info.volume_step))
        self._symbols[name] = known
        return known

    def _position(self, position: Any, offset: int) -> dict[str, Any]:
        symbol = self._symbol(position.symbol)
        money = self._currency_digits
        item = {
            # The identifier stays with the position for its life, and is its deals' position_id;
            # the ticket can change when the server re-opens it (swap charged by re-opening).
            "ticket": position.identifier,
            "symbol": position.symbol,
            "side": "buy" if position.type == self._mt5.POSITION_TYPE_BUY else "sell",
            "volume": _exact(position.volume, symbol.volume_digits),
            "open_price": _exact(position.price_open, symbol.digits),
            "current_price": _exact(position.price_current, symbol.digits),
            "profit": _exact(position.profit, money),
            "swap": _exact(position.swap, money),
            "opened_at": _utc(position.time_msc, offset),
        }
        if position.sl > 0:
            item["stop_loss"] = _exact(position.sl, symbol.digits)
        if position.tp > 0:
            item["take_profit"] = _exact(position.tp, symbol.digits)
        # What tradeguard would refuse is left out (not known), as a refusal would be the whole
        # snapshot's: a magic past a BIGINT, a comment too long or with a control character.
        magic, comment = int(position.magic), str(position.comment)
        if magic <= MAX_MAGIC:
            item["magic"] = magic
        if len(comment) <= MAX_COMMENT_LENGTH and not has_control_character(comment):
            item["comment"] = comment
        return item

    def _quote(self, name: str, tick: Any) -> dict[str, Any]:
        digits = self._symbol(name).digits
        return {"symbol": name, "bid": _exact(tick.bid, digits), "ask": _exact(tick.ask, digits)}

    def _server_offset(self, now: datetime, ticks: dict[str, Any]) -> int:
        """The server's UTC offset: configured, or the freshest tick's time against the UTC clock,
        rounded to the quarter hour, re-checked hourly from a tick that has moved since."""
        if self._settings.server_utc_offset_seconds is not None:
            return self._settings.server_utc_offset_seconds
        due = self._offset_checked_at is None or now - self._offset_checked_at >= self._offset_recheck
        if self._offset_seconds is not None and not due:
            return self._offset_seconds
        watched = [ticks[name] for name in self._settings.watch if ticks[name].time_msc > 0]
        freshest = max(watched, key=lambda tick: tick.time_msc, default=None)
        if freshest is None or freshest.time_msc == self._offset_tick_msc:
            if self._offset_seconds is None:
                raise ReadFailed(
                    "cannot derive the server's UTC offset: no watched symbol has a tick; "
                    "set mt5.server_utc_offset"
                )
            return self._offset_seconds
        estimate = round((freshest.time_msc / 1000 - now.timestamp()) / QUARTER_HOUR) * QUARTER_HOUR
        if abs(estimate) > 14 * 3600:
            raise ReadFailed(
                f"the ticks put the server {estimate} s from UTC: not a time zone; set mt5.server_utc_offset"
            )
        if estimate != self._offset_seconds:
            logger.info(
                "%s: server time is %s, derived from the ticks", self.description, _utc_offset(estimate)
            )
        self._offset_seconds = estimate
        self._offset_checked_at = now
        self._offset_tick_msc = freshest.time_msc
        return estimate

    def _closed_deals(self, now: datetime, offset: int) -> tuple[list[dict[str, Any]], dict[int, int], int]:
        start = (self._deals_since - DEAL_OVERLAP) if self._deals_since else now - DEAL_LOOKBACK
        window_start = int(start.timestamp()) + offset
        # The upper bound is generous: a deal cannot be in the future, and an offset a little off
        # must not hide one.
        window_end = int(now.timestamp()) + offset + 86_400
        found = self._call("history_deals_get", window_start, window_end)
        reported = dict(self._reported_deals)
        deals = []
        for deal in found:
            if not self._closes(deal) or deal.ticket in reported:
                continue
            deals.append(self._closed_deal(deal, offset))
            reported[deal.ticket] = deal.time
        return deals, reported, window_start

    def _closes(self, deal: Any) -> bool:
        mt5 = self._mt5
        return deal.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL) and deal.entry in (
            mt5.DEAL_ENTRY_OUT,
            mt5.DEAL_ENTRY_OUT_BY,
            mt5.DEAL_ENTRY_INOUT,
        )

    def _closed_deal(self, deal: Any, offset: int) -> dict[str, Any]:
        money = self._currency_digits
        return {
            "ticket": deal.position_id,
            "deal_id": deal.ticket,
            "close_price": _exact(deal.price, self._symbol(deal.symbol).digits),
            "profit": _exact(deal.profit, money),
            "swap": _exact(deal.swap, money),
            "commission": _exact(deal.commission, money) + _exact(deal.fee, money),
            "closed_at": _utc(deal.time_msc, offset),
            "reason": self._reason(deal),
        }

    def _reason(self, deal: Any) -> str:
        mt5 = self._mt5
        reasons = {
            mt5.DEAL_REASON_SL: "stop_loss",
            mt5.DEAL_REASON_TP: "take_profit",
            mt5.DEAL_REASON_SO: "stop_out",
            mt5.DEAL_REASON_CLIENT: "manual",
            mt5.DEAL_REASON_MOBILE: "manual",
            mt5.DEAL_REASON_WEB: "manual",
        }
        if deal.reason == mt5.DEAL_REASON_EXPERT:
            ours = deal.magic == self._settings.magic and deal.comment.startswith(COMMENT_PREFIX)
            return "close_command" if ours else "other"
        return reasons.get(deal.reason, "other")

    def close(self, order: CloseOrder, earlier: Sequence[str]) -> CloseOutcome:
        try:
            identifier = int(order.ticket)
        except ValueError:
            return CloseOutcome(
                OutcomeStatus.FAILED, f"{order.ticket!r} is not an MT5 position ticket; nothing sent"
            )
        try:
            position, deals = self._look(identifier)
        except ReadFailed as error:
            status = OutcomeStatus.UNKNOWN if earlier else OutcomeStatus.FAILED
            return CloseOutcome(
                status, f"could not look for the position before sending, nothing sent: {error}"
            )
        for command_id in earlier:
            ours = _carrying(deals, command_comment(command_id))
            if ours:
                return self._executed(ours, f"closed by the order sent earlier for command {command_id}")
        if position is None:
            return self._executed(
                [deal for deal in deals if self._closes(deal)][-1:], "position already closed, no order sent"
            )
        return self._send(order, identifier, position)

    def settle(self, order: CloseOrder) -> CloseOutcome:
        try:
            identifier = int(order.ticket)
        except ValueError:
            return CloseOutcome(OutcomeStatus.FAILED, f"{order.ticket!r} is not an MT5 position ticket")
        position, deals = self._look(identifier)
        ours = _carrying(deals, command_comment(order.command_id))
        if ours:
            return self._executed(ours, "found after a restart: the command's order was executed")
        if position is None:
            closing = [deal for deal in deals if self._closes(deal)][-1:]
            return self._executed(
                closing, "found after a restart: the position is closed, not by this command's order"
            )
        return CloseOutcome(
            OutcomeStatus.FAILED,
            "found after a restart: the broker still holds the position and no deal carries the command's comment",
        )

    def _look(self, identifier: int) -> tuple[Any | None, list[Any]]:
        positions = self._call("positions_get")
        position = next((held for held in positions if held.identifier == identifier), None)
        deals = list(self._call("history_deals_get", position=identifier))
        return position, deals

    def _send(self, order: CloseOrder, identifier: int, position: Any) -> CloseOutcome:
        comment = command_comment(order.command_id)
        fills: list[Any] = []
        refused_fillings: set[int] = set()
        retries = 0
        while True:
            try:
                request = self._request(position, comment, refused_fillings)
            except ReadFailed as error:
                return self._partial_or(
                    fills, OutcomeStatus.FAILED, f"could not price the close, nothing sent: {error}"
                )
            if request is None:
                return self._partial_or(
                    fills,
                    OutcomeStatus.FAILED,
                    f"refused: retcode {RETCODE_INVALID_FILL} for every fill policy tried "
                    f"(ORDER_FILLING_* {sorted(refused_fillings)})",
                )
            logger.info("%s: order_send %s", self.description, request)
            result = self._mt5.order_send(request)
            error = self._mt5.last_error() if result is None else None
            if error is not None and error[0] in REFUSED_BEFORE_SENDING:
                return self._partial_or(
                    fills,
                    OutcomeStatus.FAILED,
                    f"order_send refused the request, nothing sent: last_error {error}",
                )
            if result is None or result.retcode in OUTCOME_HIDDEN:
                answer = (
                    f"last_error {error}" if result is None else f"retcode {result.retcode} {result.comment}"
                )
                logger.warning(
                    "%s: order_send for command %s: %s; looking", self.description, order.command_id, answer
                )
                return self._after_hidden_outcome(identifier, comment, answer)
            logger.info("%s: order_send answered %s %s", self.description, result.retcode, result.comment)
            if result.retcode == RETCODE_DONE:
                fills.append(result)
                return self._filled(identifier, comment, fills)
            if result.retcode == RETCODE_INVALID_FILL:
                # 10030 executed nothing: the next policy the symbol may take.
                refused_fillings.add(request["type_filling"])
                continue
            if (
                result.retcode == RETCODE_DONE_PARTIAL
                and request["type_filling"] == self._mt5.ORDER_FILLING_RETURN
            ):
                fills.append(result)
                return self._partial_under_return(identifier, comment, fills)
            if result.retcode in RETRIED_AT_A_FRESH_TICK | {RETCODE_DONE_PARTIAL}:
                if result.retcode == RETCODE_DONE_PARTIAL:
                    fills.append(result)
                retries += 1
                if retries > self._settings.max_retries:
                    return self._partial_or(
                        fills,
                        OutcomeStatus.FAILED,
                        f"retcode {result.retcode} {result.comment} {retries} times",
                    )
                self._sleep(RETRY_PAUSE_SECONDS)
                try:
                    position, _ = self._look(identifier)
                except ReadFailed as error:
                    return self._partial_or(
                        fills, OutcomeStatus.UNKNOWN, f"could not look after a partial fill: {error}"
                    )
                if position is None:
                    return self._filled(identifier, comment, fills)
                continue
            return self._partial_or(
                fills, OutcomeStatus.FAILED, f"refused: retcode {result.retcode} {result.comment}"
            )

    def _request(self, position: Any, comment: str, refused_fillings: set[int]) -> dict[str, Any] | None:
        """The close at the current tick, with the best fill policy not yet refused (None: none left)."""
        mt5 = self._mt5
        info = self._call("symbol_info", position.symbol)
        filling = next((mode for mode in self._fillings(info) if mode not in refused_fillings), None)
        if filling is None:
            return None
        tick = self._call("symbol_info_tick", position.symbol)
        closing_buy = position.type == mt5.POSITION_TYPE_BUY
        return {
            "action": mt5.TRADE_ACTION_DEAL,
            "position": position.ticket,
            "symbol": position.symbol,
            "volume": position.volume,
            "type": mt5.ORDER_TYPE_SELL if closing_buy else mt5.ORDER_TYPE_BUY,
            "price": tick.bid if closing_buy else tick.ask,
            "deviation": self._settings.deviation,
            "type_filling": filling,
            "type_time": mt5.ORDER_TIME_GTC,
            "magic": self._settings.magic,
            "comment": comment,
        }

    def _fillings(self, info: Any) -> list[int]:
        """The fill policies for a market close, best first.

        MetaQuotes documents them two ways: the MQL5 reference (SYMBOL_FILLING_MODE) has Fill or
        Kill always used under instant and request execution and Return always allowed under
        market and exchange execution; MetaTrader 5's Help ("Fill Policy") has Fill or Kill only
        under instant and request execution and Return for market orders only under exchange
        execution. Both agree on FOK first under instant and request execution, and on the
        `SYMBOL_FILLING_*` flags for FOK and IOC otherwise; Return comes last, and a 10030
        (nothing executed) moves on to the next."""
        mt5 = self._mt5
        fillings = []
        if info.trade_exemode in (mt5.SYMBOL_TRADE_EXECUTION_REQUEST, mt5.SYMBOL_TRADE_EXECUTION_INSTANT):
            fillings.append(mt5.ORDER_FILLING_FOK)
        if info.filling_mode & mt5.SYMBOL_FILLING_FOK:
            fillings.append(mt5.ORDER_FILLING_FOK)
        if info.filling_mode & mt5.SYMBOL_FILLING_IOC:
            fillings.append(mt5.ORDER_FILLING_IOC)
        fillings.append(mt5.ORDER_FILLING_RETURN)
        return list(dict.fromkeys(fillings))

    def _after_hidden_outcome(self, identifier: int, comment: str, answer: str) -> CloseOutcome:
        try:
            position, deals = self._look(identifier)
        except ReadFailed as error:
            return CloseOutcome(OutcomeStatus.UNKNOWN, f"order_send: {answer}; then could not look: {error}")
        ours = _carrying(deals, comment)
        if ours:
            return self._executed(ours, f"order_send: {answer}; the order's deal was found")
        if position is None:
            return CloseOutcome(OutcomeStatus.EXECUTED, f"order_send: {answer}; the position is gone")
        return CloseOutcome(
            OutcomeStatus.UNKNOWN, f"order_send: {answer}; the position is still open, no deal found yet"
        )

    def _partial_under_return(self, identifier: int, comment: str, fills: list[Any]) -> CloseOutcome:
        """ORDER_FILLING_RETURN keeps the unfilled rest of an order working at the server: another
        order for it could close twice, so none is sent."""
        working = "retcode 10010 under ORDER_FILLING_RETURN: the rest stays working at the server"
        try:
            position, _ = self._look(identifier)
        except ReadFailed as error:
            return self._partial_or(fills, OutcomeStatus.UNKNOWN, f"{working}; could not look: {error}")
        if position is None:
            return self._filled(identifier, comment, fills)
        return self._partial_or(fills, OutcomeStatus.UNKNOWN, f"{working}, no second order sent")

    def _filled(self, identifier: int, comment: str, fills: list[Any]) -> CloseOutcome:
        try:
            _, deals = self._look(identifier)
        except ReadFailed:
            deals = []
        filled = {result.deal for result in fills}
        ours = [deal for deal in deals if deal.ticket in filled] or _carrying(deals, comment)
        if ours:
            return self._executed(
                ours, f"closed: {len(fills)} order(s), deal(s) {', '.join(str(d.ticket) for d in ours)}"
            )
        last = fills[-1]
        digits = self._symbol(last.request.symbol).digits
        return CloseOutcome(
            OutcomeStatus.EXECUTED, f"closed: deal {last.deal}", close_price=_exact(last.price, digits)
        )

    def _partial_or(self, fills: list[Any], status: OutcomeStatus, detail: str) -> CloseOutcome:
        if fills:
            closed = sum((Decimal(repr(result.volume)) for result in fills), Decimal(0))
            detail = f"{detail}; {closed} lots were closed before"
        return CloseOutcome(status, detail)

    def _executed(self, deals: Iterable[Any], detail: str) -> CloseOutcome:
        deals = list(deals)
        if not deals:
            return CloseOutcome(OutcomeStatus.EXECUTED, detail)
        money = self._currency_digits
        profit = sum((_exact(deal.profit, money) for deal in deals), Decimal(0))
        last = deals[-1]
        price = _exact(last.price, self._symbol(last.symbol).digits)
        return CloseOutcome(OutcomeStatus.EXECUTED, detail, close_price=price, profit=profit)


def _carrying(deals: Iterable[Any], comment: str) -> list[Any]:
    return [deal for deal in deals if deal.comment == comment]


def _utc(server_msc: int, offset: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=server_msc - offset * 1000)


def _utc_offset(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"UTC{sign}{hours}:{minutes:02d}"
