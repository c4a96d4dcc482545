"""users carry the version of their credentials, which every access token names

Revision ID: 0004_credentials_version
Revises: 0003_alert_identity
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_credentials_version"
down_revision = "0003_alert_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credentials_version", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35+): a batch copy of `users` would have to drop
    # the table that every account's foreign key names.
    op.drop_column("users", "credentials_version")
