"""positions carry the magic number and the comment their bridge reports

Revision ID: 0008_position_magic_comment
Revises: 0007_risk_rules
Create Date: 2026-12-01 23:45:00

Both nullable: a position stored before, or sent by a bridge that does not report them, has
neither, which is not the same as magic 0 (no expert) or an empty comment.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_position_magic_comment"
down_revision = "0007_risk_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broker_positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("magic", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("comment", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35+), as 0004 does, rather than a batch copy of the table.
    op.drop_column("broker_positions", "comment")
    op.drop_column("broker_positions", "magic")
