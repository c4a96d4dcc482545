"""The stand-in terminal's state: one SQLite file shared by every process that opens it.

A real MetaTrader 5 terminal is state outside the bridge: the trade copier opens positions in it,
the market moves its prices, the bridge reads and closes. The stand-in keeps that state in a file
so that the bridge process, the tests driving a scenario and the demo all see one terminal.

Amounts are kept as decimal strings and computed exactly; only the package's answers turn them
into floats, as the real package hands them out.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    running INTEGER NOT NULL,
    connected INTEGER NOT NULL,
    algo_trading INTEGER NOT NULL,
    login INTEGER,
    server_utc_offset_seconds INTEGER NOT NULL,
    next_ticket INTEGER NOT NULL,
    next_request_id INTEGER NOT NULL,
    empty_as_none INTEGER NOT NULL,
    comment_limit INTEGER NOT NULL,
    tradeapi_disabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    login INTEGER PRIMARY KEY,
    password TEXT NOT NULL,
    server TEXT NOT NULL,
    name TEXT NOT NULL,
    company TEXT NOT NULL,
    currency TEXT NOT NULL,
    currency_digits INTEGER NOT NULL,
    balance TEXT NOT NULL,
    credit TEXT NOT NULL,
    leverage INTEGER NOT NULL,
    margin_mode INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS symbols (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    digits INTEGER NOT NULL,
    contract_size TEXT NOT NULL,
    tick_size TEXT NOT NULL,
    tick_value TEXT NOT NULL,
    volume_min TEXT NOT NULL,
    volume_max TEXT NOT NULL,
    volume_step TEXT NOT NULL,
    filling_mode INTEGER NOT NULL,
    trade_exemode INTEGER NOT NULL,
    trade_mode INTEGER NOT NULL,
    market_open INTEGER NOT NULL,
    visible INTEGER NOT NULL,
    currency_base TEXT NOT NULL,
    currency_profit TEXT NOT NULL,
    bid TEXT NOT NULL,
    ask TEXT NOT NULL,
    tick_time_msc INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    ticket INTEGER PRIMARY KEY,
    identifier INTEGER NOT NULL,
    login INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    type INTEGER NOT NULL,
    volume TEXT NOT NULL,
    price_open TEXT NOT NULL,
    sl TEXT NOT NULL,
    tp TEXT NOT NULL,
    swap TEXT NOT NULL,
    magic INTEGER NOT NULL,
    comment TEXT NOT NULL,
    reason INTEGER NOT NULL,
    time_msc INTEGER NOT NULL,
    time_update_msc INTEGER NOT NULL,
    external_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deals (
    ticket INTEGER PRIMARY KEY,
    login INTEGER NOT NULL,
    order_ticket INTEGER NOT NULL,
    time_msc INTEGER NOT NULL,
    type INTEGER NOT NULL,
    entry INTEGER NOT NULL,
    magic INTEGER NOT NULL,
    position_id INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    volume TEXT NOT NULL,
    price TEXT NOT NULL,
    commission TEXT NOT NULL,
    swap TEXT NOT NULL,
    profit TEXT NOT NULL,
    fee TEXT NOT NULL,
    symbol TEXT NOT NULL,
    comment TEXT NOT NULL,
    external_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS order_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    process_id INTEGER NOT NULL,
    request TEXT NOT NULL,
    retcode INTEGER
);
CREATE TABLE IF NOT EXISTS scripted_answers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    behaviour TEXT NOT NULL
);
"""

BUY, SELL = 0, 1
"""POSITION_TYPE_BUY and POSITION_TYPE_SELL; ORDER_TYPE_BUY and ORDER_TYPE_SELL have the same values."""
SYMBOL_TRADE_EXECUTION_MARKET = 2


def utc_msc() -> int:
    return time.time_ns() // 1_000_000


def decimal(text: str) -> Decimal:
    return Decimal(text)


class TerminalState:
    """The terminal's file, opened by one process; every method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")

    @classmethod
    def create(cls, path: Path, *, server_utc_offset_hours: float, comment_limit: int) -> TerminalState:
        state = cls(path)
        state._db.executescript(SCHEMA)
        with state.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO terminal VALUES (1, 1, 1, 1, NULL, ?, 50000001, 1, 0, ?, 0)",
                (round(server_utc_offset_hours * 3600), comment_limit),
            )
        return state

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def terminal(self, db: sqlite3.Connection | None = None) -> sqlite3.Row:
        return (db or self._db).execute("SELECT * FROM terminal").fetchone()

    def set_terminal(self, db: sqlite3.Connection, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE terminal SET {assignments}", tuple(fields.values()))

    def next_ticket(self, db: sqlite3.Connection) -> int:
        ticket = self.terminal(db)["next_ticket"]
        self.set_terminal(db, next_ticket=ticket + 1)
        return ticket

    def next_request_id(self, db: sqlite3.Connection) -> int:
        request_id = self.terminal(db)["next_request_id"]
        self.set_terminal(db, next_request_id=request_id + 1)
        return request_id

    def server_msc(self, db: sqlite3.Connection | None = None) -> int:
        """Now in the broker's server time, as MT5 counts it: UTC plus the server's offset."""
        return utc_msc() + self.terminal(db)["server_utc_offset_seconds"] * 1000

    def account(self, db: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        login = self.terminal(db)["login"]
        return (db or self._db).execute("SELECT * FROM accounts WHERE login = ?", (login,)).fetchone()

    def symbol(self, name: str, db: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        return (db or self._db).execute("SELECT * FROM symbols WHERE name = ?", (name,)).fetchone()

    def symbols(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM symbols ORDER BY name").fetchall()

    def positions(self, login: int, db: sqlite3.Connection | None = None) -> list[sqlite3.Row]:
        query = "SELECT * FROM positions WHERE login = ? ORDER BY ticket"
        return (db or self._db).execute(query, (login,)).fetchall()

    def position(self, ticket: int, login: int, db: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        query = "SELECT * FROM positions WHERE ticket = ? AND login = ?"
        return (db or self._db).execute(query, (ticket, login)).fetchone()

    def deals(self, login: int | None = None) -> list[sqlite3.Row]:
        if login is None:
            return self._db.execute("SELECT * FROM deals ORDER BY ticket").fetchall()
        return self._db.execute("SELECT * FROM deals WHERE login = ? ORDER BY ticket", (login,)).fetchall()

    def order_requests(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM order_requests ORDER BY seq").fetchall()

    def record_request(self, db: sqlite3.Connection, request: dict[str, Any], process_id: int) -> int:
        cursor = db.execute(
            "INSERT INTO order_requests (process_id, request) VALUES (?, ?)",
            (process_id, json.dumps(request, sort_keys=True)),
        )
        return cursor.lastrowid

    def record_retcode(self, db: sqlite3.Connection, seq: int, retcode: int | None) -> None:
        db.execute("UPDATE order_requests SET retcode = ? WHERE seq = ?", (retcode, seq))

    def next_scripted_answer(self, db: sqlite3.Connection) -> dict[str, Any] | None:
        row = db.execute("SELECT * FROM scripted_answers ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        db.execute("DELETE FROM scripted_answers WHERE seq = ?", (row["seq"],))
        return json.loads(row["behaviour"])

    def script(self, behaviour: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO scripted_answers (behaviour) VALUES (?)", (json.dumps(behaviour),))

    def scripted_answers_left(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM scripted_answers").fetchone()[0]

    def insert_deal(self, db: sqlite3.Connection, **fields: Any) -> int:
        ticket = self.next_ticket(db)
        columns = ["ticket", *fields]
        placeholders = ", ".join("?" for _ in columns)
        db.execute(
            f"INSERT INTO deals ({', '.join(columns)}) VALUES ({placeholders})", (ticket, *fields.values())
        )
        return ticket


def money(amount: Decimal, account: sqlite3.Row) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-account["currency_digits"]), rounding=ROUND_HALF_UP)


def closing_price(position: sqlite3.Row, symbol: sqlite3.Row) -> Decimal:
    """A buy closes at the bid, a sell at the ask."""
    return decimal(symbol["bid"] if position["type"] == BUY else symbol["ask"])


def profit_at(position: sqlite3.Row, symbol: sqlite3.Row, account: sqlite3.Row, price: Decimal, volume=None):
    """Profit in the account currency: price ticks moved times the tick's value, per lot."""
    direction = 1 if position["type"] == BUY else -1
    moved = (price - decimal(position["price_open"])) * direction
    volume = decimal(position["volume"]) if volume is None else volume
    ticks = moved / decimal(symbol["tick_size"])
    return money(ticks * decimal(symbol["tick_value"]) * volume, account)


def margin_of(position: sqlite3.Row, symbol: sqlite3.Row, account: sqlite3.Row) -> Decimal:
    """Forex margin: the contract's value in the account currency over the leverage."""
    notional = decimal(position["volume"]) * decimal(symbol["contract_size"])
    if symbol["currency_base"] != account["currency"]:
        notional *= decimal(position["price_open"])
    return money(notional / account["leverage"], account)


def account_totals(state: TerminalState, account: sqlite3.Row, db=None) -> dict[str, Decimal]:
    balance = decimal(account["balance"])
    profit = margin = Decimal(0)
    for position in state.positions(account["login"], db):
        symbol = state.symbol(position["symbol"], db)
        profit += profit_at(position, symbol, account, closing_price(position, symbol))
        profit += decimal(position["swap"])
        margin += margin_of(position, symbol, account)
    equity = balance + decimal(account["credit"]) + profit
    return {"balance": balance, "profit": profit, "equity": equity, "margin": margin}
