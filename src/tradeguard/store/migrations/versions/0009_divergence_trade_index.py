"""an index of the trail's divergences by trade, for the divergence rates

Revision ID: 0009_divergence_trade_index
Revises: 0008_position_magic_comment
Create Date: 2026-12-02 02:05:00

Partial: only divergence events are looked up by trade, and they are a small part of the trail.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_divergence_trade_index"
down_revision = "0008_position_magic_comment"
branch_labels = None
depends_on = None

_DIVERGENCE_EVENT = "event_type = 'divergence'"


def upgrade() -> None:
    op.create_index(
        "ix_reconciliation_log_divergence_trade",
        "reconciliation_log",
        ["account_id", "trade_id"],
        postgresql_where=sa.text(_DIVERGENCE_EVENT),
        sqlite_where=sa.text(_DIVERGENCE_EVENT),
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_log_divergence_trade", table_name="reconciliation_log")
