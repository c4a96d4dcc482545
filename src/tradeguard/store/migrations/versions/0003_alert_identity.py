"""the audit entry of an alert names the alert

Revision ID: 0003_alert_identity
Revises: 0002_closed_deals
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_alert_identity"
down_revision = "0002_closed_deals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reconciliation_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_reconciliation_log_alert_id_alerts"), "alerts", ["alert_id"], ["id"]
        )
    # Entries written before: an alert and its entry were stored together, with the same account,
    # time, kind and message.
    op.execute(
        """
        UPDATE reconciliation_log SET alert_id = (
            SELECT MIN(alerts.id) FROM alerts
            WHERE alerts.account_id = reconciliation_log.account_id
              AND alerts.created_at = reconciliation_log.created_at
              AND alerts.kind = reconciliation_log.reason
              AND alerts.message = reconciliation_log.message
        )
        WHERE event_type = 'alert'
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_log", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reconciliation_log_alert_id_alerts"), type_="foreignkey")
        batch_op.drop_column("alert_id")
