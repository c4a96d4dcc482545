"""Accounts in every state the platform view ranks, written as the ingest and the commands leave them."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tests.support.builders import NOW
from tradeguard.cache import invalidate_accounts
from tradeguard.store.models import Account, CloseCommand

# In the order the platform view ranks them: (name, account state, its close commands' states).
ACCOUNTS_BY_ATTENTION = [
    (
        "halted deep",
        {
            "trading_allowed": False,
            "halted_at": NOW,
            "halt_reason": "drawdown 25% >= critical 20%",
            "drawdown_level": "critical",
            "drawdown_pct": Decimal("25"),
        },
        [],
    ),
    ("halted shallow", {"trading_allowed": False, "halted_at": NOW, "drawdown_pct": Decimal("2")}, []),
    ("critical", {"drawdown_level": "critical", "drawdown_pct": Decimal("21"), "feed_stale": True}, []),
    ("stale", {"feed_stale": True}, []),
    ("divergent", {"divergences_detected": 2}, ["failed"]),
    ("outstanding", {}, ["pending", "sent", "executed"]),
    ("failed", {}, ["failed", "expired"]),
    ("warning deep", {"drawdown_level": "warning", "drawdown_pct": Decimal("17.5")}, []),
    ("warning shallow", {"drawdown_level": "warning", "drawdown_pct": Decimal("15.5")}, []),
    ("fine", {"drawdown_pct": Decimal("1")}, ["executed", "cancelled"]),
    ("fine never synced", {}, []),
]


async def add_commands(api, account_id: int, states: list[str]) -> None:
    async with api.session() as session:
        for index, state in enumerate(states):
            session.add(
                CloseCommand(
                    id=str(uuid.uuid4()),
                    account_id=account_id,
                    ticket=str(900 + index),
                    symbol="EURUSD",
                    volume=Decimal("0.10"),
                    cause="drawdown",
                    state=state,
                    created_at=NOW,
                    updated_at=NOW,
                    sent_at=None if state == "pending" else NOW,
                )
            )
        owner_id = (await session.get(Account, account_id)).owner_id
        await session.commit()
    await invalidate_accounts(api.services.cache, {account_id: owner_id})
