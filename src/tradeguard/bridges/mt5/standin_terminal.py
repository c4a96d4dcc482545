"""The other side of the stand-in terminal: what the broker, the market and a trade copier do to it.

A test or the demo creates the terminal's file, sets up the account and its symbols, opens
positions as a copier would, moves prices, drops the connection, and scripts what the bridge's
next `order_send` calls meet; then it inspects every request the bridge sent and every deal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeguard.bridges.mt5 import standin
from tradeguard.bridges.mt5.standin_state import TerminalState, account_totals, closing_price, profit_at


class PositionNotOpen(LookupError):
    """The logged-in account holds no open position of this ticket."""


@dataclass(frozen=True)
class RecordedRequest:
    """One `order_send` request as the terminal received it, and the retcode it answered (None: no answer)."""

    process_id: int
    request: dict[str, Any]
    retcode: int | None


class StandinTerminal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._state = TerminalState(self.path)

    @classmethod
    def create(cls, path: Path, *, server_utc_offset_hours: float = 2) -> StandinTerminal:
        """A new terminal file; the broker's server runs `server_utc_offset_hours` ahead of UTC."""
        TerminalState.create(
            Path(path), server_utc_offset_hours=server_utc_offset_hours, comment_limit=standin.COMMENT_LIMIT
        ).close()
        return cls(path)

    def close(self) -> None:
        self._state.close()

    def add_account(
        self,
        login: int,
        *,
        password: str = "",
        server: str = "Standin-Demo",
        currency: str = "USD",
        currency_digits: int = 2,
        balance: Decimal | str = "10000",
        leverage: int = 100,
        name: str = "Follower",
        company: str = "Standin Broker Ltd.",
        log_in: bool = True,
    ) -> None:
        with self._state.transaction() as db:
            db.execute(
                "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, '0', ?, ?)",
                (
                    login,
                    password,
                    server,
                    name,
                    company,
                    currency,
                    currency_digits,
                    str(Decimal(balance)),
                    leverage,
                    standin.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
                ),
            )
            if log_in:
                self._state.set_terminal(db, login=login)

    def add_symbol(
        self,
        name: str,
        *,
        bid: str,
        ask: str,
        digits: int = 5,
        contract_size: str = "100000",
        tick_size: str | None = None,
        tick_value: str | None = None,
        volume_min: str = "0.01",
        volume_max: str = "100",
        volume_step: str = "0.01",
        filling_mode: int = standin.SYMBOL_FILLING_FOK | standin.SYMBOL_FILLING_IOC,
        trade_exemode: int = standin.SYMBOL_TRADE_EXECUTION_INSTANT,
        currency_base: str | None = None,
        currency_profit: str = "USD",
        visible: bool = True,
        description: str = "",
    ) -> None:
        """A symbol in the Market Watch. `tick_value` (in the account currency) defaults to the
        tick size times the contract size: a symbol whose profit currency is the account's."""
        tick_size = tick_size or str(Decimal(1).scaleb(-digits))
        tick_value = tick_value or str(Decimal(tick_size) * Decimal(contract_size))
        with self._state.transaction() as db:
            db.execute(
                "INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    description or name,
                    digits,
                    contract_size,
                    tick_size,
                    tick_value,
                    volume_min,
                    volume_max,
                    volume_step,
                    filling_mode,
                    trade_exemode,
                    standin.SYMBOL_TRADE_MODE_FULL,
                    int(visible),
                    currency_base or name[:3],
                    currency_profit,
                    bid,
                    ask,
                    self._state.server_msc(db),
                ),
            )

    def quote(self, symbol: str, *, bid: str, ask: str) -> None:
        """A new tick: floating profit and equity follow at once."""
        with self._state.transaction() as db:
            db.execute(
                "UPDATE symbols SET bid = ?, ask = ?, tick_time_msc = ? WHERE name = ?",
                (bid, ask, self._state.server_msc(db), symbol),
            )

    def set_market_open(self, symbol: str, is_open: bool) -> None:
        with self._state.transaction() as db:
            db.execute("UPDATE symbols SET market_open = ? WHERE name = ?", (int(is_open), symbol))

    def set_filling_mode(self, symbol: str, flags: int, *, execution: int | None = None) -> None:
        """The broker's `SYMBOL_FILLING_*` flags for the symbol, and its `SYMBOL_TRADE_EXECUTION_*` mode."""
        with self._state.transaction() as db:
            db.execute("UPDATE symbols SET filling_mode = ? WHERE name = ?", (flags, symbol))
            if execution is not None:
                db.execute("UPDATE symbols SET trade_exemode = ? WHERE name = ?", (execution, symbol))

    def open_position(
        self,
        symbol: str,
        side: str,
        volume: str,
        *,
        magic: int = 0,
        comment: str = "",
        swap: str = "0",
        reason: int = standin.POSITION_REASON_EXPERT,
        sl: str = "0",
        tp: str = "0",
        price: str | None = None,
    ) -> int:
        """Open as a trade copier would (its opening deal included): at the current price, or at
        `price` (the price a copier's order was filled at, slipped or not); the ticket."""
        order_type = standin.ORDER_TYPE_BUY if side == "buy" else standin.ORDER_TYPE_SELL
        with self._state.transaction() as db:
            account = self._state.account(db)
            row = self._state.symbol(symbol, db)
            if price is None:
                price = row["ask"] if order_type == standin.ORDER_TYPE_BUY else row["bid"]
            _, order = standin.execute_deal(
                self._state,
                db,
                account,
                row,
                order_type=order_type,
                volume=Decimal(volume),
                price=Decimal(price),
                position=None,
                magic=magic,
                comment=comment,
                reason=reason,
            )
            db.execute(
                "UPDATE positions SET swap = ?, sl = ?, tp = ? WHERE ticket = ?", (swap, sl, tp, order)
            )
        return order

    def close_position(
        self,
        ticket: int,
        *,
        reason: int = standin.DEAL_REASON_CLIENT,
        price: str | None = None,
        volume: str | None = None,
        magic: int = 0,
        comment: str = "",
        commission: str = "0",
    ) -> int:
        """Close outside the bridge: a stop loss (`reason=DEAL_REASON_SL`, `price` the fill through
        a gap), a manual close, a stop-out. Returns the closing deal's ticket; raises
        `PositionNotOpen` when the position is gone (the bridge may just have closed it)."""
        with self._state.transaction() as db:
            account = self._state.account(db)
            position = self._state.position(ticket, account["login"], db)
            if position is None:
                raise PositionNotOpen(ticket)
            row = self._state.symbol(position["symbol"], db)
            deal, _ = standin.execute_deal(
                self._state,
                db,
                account,
                row,
                order_type=1 - position["type"],
                volume=Decimal(volume or position["volume"]),
                price=Decimal(price) if price else closing_price(position, row),
                position=position,
                magic=magic,
                comment=comment,
                reason=reason,
                commission=Decimal(commission),
            )
        return deal

    def disconnect(self) -> None:
        """The terminal loses its trade server: it still answers, with what it last knew."""
        self._set(connected=0)

    def reconnect(self) -> None:
        self._set(connected=1)

    def stop(self) -> None:
        """The terminal process is gone: every call answers None, `(-10004, 'No IPC connection')`."""
        self._set(running=0)

    def start(self) -> None:
        self._set(running=1)

    def log_out(self) -> None:
        self._set(login=None)

    def switch_account(self, login: int) -> None:
        """Someone logs the terminal in to another account (it must have been added)."""
        self._set(login=login)

    def set_algo_trading(self, enabled: bool) -> None:
        """The terminal's Algo Trading button: off, every order_send answers 10027."""
        self._set(algo_trading=int(enabled))

    def set_python_trading(self, allowed: bool) -> None:
        """The terminal's option "Disable automatic trading via external Python API", ticked when
        not `allowed`: `terminal_info().tradeapi_disabled`, and order_send answers None with
        `(-8, 'Terminal: Autotrading disabled')`."""
        self._set(tradeapi_disabled=int(not allowed))

    def set_comment_limit(self, characters: int) -> None:
        """The longest request comment this terminal build takes (public reports differ by build)."""
        self._set(comment_limit=characters)

    def answer_empty_collections_with_none(self, enabled: bool = True) -> None:
        """`positions_get`, `orders_get` and `history_deals_get` with nothing to return answer None
        with `last_error()` (1, 'Success'), as public code reports of some terminals, instead of
        the () the documentation implies (it says None means an error)."""
        self._set(empty_as_none=int(enabled))

    def set_server_utc_offset(self, hours: float) -> None:
        self._set(server_utc_offset_seconds=round(hours * 3600))

    def _set(self, **fields: Any) -> None:
        with self._state.transaction() as db:
            self._state.set_terminal(db, **fields)

    def script_requote(self) -> None:
        """The next order_send answers 10004 without executing."""
        self._state.script({"kind": "requote"})

    def script_refusal(self, retcode: int) -> None:
        """The next order_send answers `retcode` without executing (10031, 10012, 10019, ...)."""
        self._state.script({"kind": "refuse", "retcode": retcode})

    def script_partial_fill(self, volume: str) -> None:
        """The next order_send fills only `volume` and answers 10010."""
        self._state.script({"kind": "partial", "volume": volume})

    def script_lost_answer(self) -> None:
        """The next order_send executes, and answers None with `(-10005, 'IPC timeout')`."""
        self._state.script({"kind": "lose_answer"})

    def script_terminal_lost_after_execution(self) -> None:
        """The next order_send executes, then the terminal goes away (`stop()`) before answering."""
        self._state.script({"kind": "lose_terminal"})

    def script_hang_after_execution(self) -> None:
        """The next order_send executes and never answers, so that a test can kill the caller."""
        self._state.script({"kind": "hang"})

    def scripted_answers_left(self) -> int:
        return self._state.scripted_answers_left()

    def order_requests(self) -> list[RecordedRequest]:
        return [
            RecordedRequest(row["process_id"], json.loads(row["request"]), row["retcode"])
            for row in self._state.order_requests()
        ]

    def deals(self) -> list[standin.TradeDeal]:
        return [standin.trade_deal(row) for row in self._state.deals()]

    def positions(self) -> dict[int, dict[str, Any]]:
        """The logged-in account's open positions by ticket, exact: volume and floating profit as Decimals."""
        account = self._state.account()
        held = {}
        for position in self._state.positions(account["login"]):
            row = self._state.symbol(position["symbol"])
            held[position["ticket"]] = {
                "symbol": position["symbol"],
                "side": "buy" if position["type"] == standin.POSITION_TYPE_BUY else "sell",
                "volume": Decimal(position["volume"]),
                "profit": profit_at(position, row, account, closing_price(position, row)),
            }
        return held

    def totals(self) -> dict[str, Decimal]:
        """balance, profit (floating, with swap), equity and margin of the logged-in account, exact."""
        return account_totals(self._state, self._state.account())
