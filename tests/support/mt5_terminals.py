"""The stand-in terminal the MT5 tests share: one account at a GMT+2 broker, a forex and a metal symbol."""

from __future__ import annotations

from pathlib import Path

from tradeguard.bridges.mt5.standin_terminal import StandinTerminal

LOGIN = 5012345
PASSWORD = "broker-password"
SERVER = "Standin-Demo"


def two_symbol_terminal(folder: Path) -> StandinTerminal:
    """XAUUSD is left out of the Market Watch, as a symbol a bridge must select first."""
    terminal = StandinTerminal.create(folder / "terminal.sqlite3", server_utc_offset_hours=2)
    terminal.add_account(LOGIN, password=PASSWORD, server=SERVER)
    terminal.add_symbol("EURUSD", bid="1.08500", ask="1.08510")
    terminal.add_symbol("XAUUSD", bid="2331.43", ask="2331.73", digits=2, contract_size="100", visible=False)
    return terminal
