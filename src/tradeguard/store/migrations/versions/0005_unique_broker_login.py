"""one account per owner, broker and login

Revision ID: 0005_unique_broker_login
Revises: 0004_credentials_version
Create Date: 2026-12-01 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_unique_broker_login"
down_revision = "0004_credentials_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    duplicates = op.get_bind().execute(
        sa.text(
            "SELECT owner_id, broker, login, COUNT(*) FROM accounts "
            "WHERE broker IS NOT NULL AND login IS NOT NULL "
            "GROUP BY owner_id, broker, login HAVING COUNT(*) > 1"
        )
    )
    found = [
        f"user {owner_id}: broker {broker} login {login} ({count} accounts)"
        for owner_id, broker, login, count in duplicates
    ]
    if found:
        raise RuntimeError(
            "an owner's accounts share a broker and login, which now name one account: "
            + "; ".join(found)
            + ". Give each real account one tradeguard account (clear the login of the others), then migrate."
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index("uq_accounts_owner_broker_login", ["owner_id", "broker", "login"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_accounts_owner_broker_login")
