"""the reconciliation log looked up by ticket, for the deals snapshots carry

Revision ID: 0002_closed_deals
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""

from alembic import op

revision = "0002_closed_deals"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reconciliation_log", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_log_account_ticket", ["account_id", "ticket"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_log", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_log_account_ticket")
