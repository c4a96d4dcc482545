"""Where an account stands against each of its risk rules: the loss, and the headroom to every step."""

from __future__ import annotations

from sqlalchemy import literal
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.accounts.service import guard_rules_of
from tradeguard.accounts.trading import trading_state_of
from tradeguard.actions.guarding import stored_fields
from tradeguard.domain.guards.drawdown import rule_set_state_from
from tradeguard.domain.guards.rule_evaluation import evaluate_rules
from tradeguard.store import accounts_state as rows
from tradeguard.store.models import Account, AccountState

_POSITIONS = rows.positions_with(literal(1))


async def rule_standings(session: AsyncSession, account: Account, state: AccountState) -> list[dict]:
    """Each rule judged on the account's last snapshot, as it was judged then; empty before the first."""
    if state.equity is None or state.balance is None or state.last_snapshot_taken_at is None:
        return []
    _, stored = await rows.read_positions_with(session, _POSITIONS, account.id)
    signals = {
        trade.trade.trade_id: trade.trade.signal_id for trade in await rows.open_trades(session, account.id)
    }
    matched_signals = {
        ticket: signals.get(held.matched_trade_id)
        for ticket, held in stored.items()
        if held.matched_trade_id is not None
    }
    decision = evaluate_rules(
        guard_rules_of(account),
        rule_set_state_from(stored_fields(state)),
        equity=state.equity,
        balance=state.balance,
        now=state.last_snapshot_taken_at,
        halted=trading_state_of(state).halted,
        positions=[held.position for held in stored.values()],
        matched_signals=matched_signals,
    )
    return [
        {
            "rule": result.rule.id,
            "shadow": result.rule.shadow,
            "value": result.value,
            "reference": result.reference,
            "loss": result.loss,
            "loss_pct": result.loss_pct,
            "step": result.step,
            "steps": [
                {
                    "tier": standing.step.tier.value,
                    "label": standing.step.name,
                    "limit": standing.limit,
                    "headroom": standing.headroom,
                    "headroom_pct": standing.headroom_pct,
                    "breached": standing.breached,
                }
                for standing in result.standings
            ],
        }
        for result in decision.results
    ]
