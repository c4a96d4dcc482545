"""risk rules as data: an account's rule set, and what each rule remembers

Revision ID: 0007_risk_rules
Revises: 0006_history_partitions
Create Date: 2026-12-01 23:30:00

An account's guard now judges a rule set. Accounts keep their drawdown settings, which stay their
rule set until an owner sets another (`accounts.guard_rules`, JSON, NULL for "the settings'"). The
daily loss's anchor (`day_anchor_value`, `day_anchor_start`) becomes the `daily_loss` rule's
period start in `account_states.rule_states`, as both its start balance and start equity, since
the anchor was whichever of the two the settings chose: the day in progress is judged on.
"""

import json
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from tradeguard.store.types import ExactDecimal, UTCDateTime

revision = "0007_risk_rules"
down_revision = "0006_history_partitions"
branch_labels = None
depends_on = None

_DAILY = "daily_loss"


def _states(*columns: sa.Column) -> sa.TableClause:
    return sa.table("account_states", sa.column("account_id", sa.Integer()), *columns)


def upgrade() -> None:
    # Added and dropped in place: a batch would rebuild `accounts`, which other tables reference.
    op.add_column("accounts", sa.Column("guard_rules", sa.Text(), nullable=True))
    with op.batch_alter_table("account_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_states", sa.Text(), nullable=True))

    bind = op.get_bind()
    anchors = _states(
        sa.column("day_anchor_value", ExactDecimal()),
        sa.column("day_anchor_start", UTCDateTime()),
        sa.column("rule_states", sa.Text()),
    )
    rows = bind.execute(
        sa.select(anchors.c.account_id, anchors.c.day_anchor_value, anchors.c.day_anchor_start).where(
            anchors.c.day_anchor_start.is_not(None), anchors.c.day_anchor_value.is_not(None)
        )
    ).all()
    for account_id, value, start in rows:
        daily = {"period_start": start.isoformat(), "start_balance": str(value), "start_equity": str(value)}
        bind.execute(
            anchors.update()
            .where(anchors.c.account_id == account_id)
            .values(rule_states=json.dumps({"initial_balance": None, "rules": {_DAILY: daily}}))
        )

    with op.batch_alter_table("account_states", schema=None) as batch_op:
        batch_op.drop_column("day_anchor_value")
        batch_op.drop_column("day_anchor_start")


def downgrade() -> None:
    with op.batch_alter_table("account_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("day_anchor_value", ExactDecimal(), nullable=True))
        batch_op.add_column(sa.Column("day_anchor_start", UTCDateTime(), nullable=True))

    bind = op.get_bind()
    states = _states(
        sa.column("rule_states", sa.Text()),
        sa.column("day_anchor_value", ExactDecimal()),
        sa.column("day_anchor_start", UTCDateTime()),
    )
    rows = bind.execute(
        sa.select(states.c.account_id, states.c.rule_states).where(states.c.rule_states.is_not(None))
    ).all()
    for account_id, text in rows:
        daily = json.loads(text).get("rules", {}).get(_DAILY)
        if not daily or "period_start" not in daily:
            continue
        bind.execute(
            states.update()
            .where(states.c.account_id == account_id)
            .values(
                day_anchor_value=Decimal(daily.get("start_balance") or daily["start_equity"]),
                day_anchor_start=datetime.fromisoformat(daily["period_start"]),
            )
        )

    with op.batch_alter_table("account_states", schema=None) as batch_op:
        batch_op.drop_column("rule_states")
    op.drop_column("accounts", "guard_rules")
