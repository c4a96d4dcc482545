"""An account's trading state, read from and written to the state row's three columns."""

from __future__ import annotations

from tradeguard.domain.trading import TradingState, TradingStatus
from tradeguard.store.models import AccountState


def trading_state_of(state: AccountState) -> TradingState:
    if state.trading_allowed:
        return TradingState.active()
    return TradingState(TradingStatus.HALTED, state.halt_reason, state.halted_at)


def store_trading_state(state: AccountState, trading: TradingState) -> None:
    state.trading_allowed = trading.trading_allowed
    state.halted_at = trading.since
    state.halt_reason = trading.reason
