"""the equity history by time: raw points partitioned by day, minute aggregates, retention bounds

Revision ID: 0006_history_partitions
Revises: 0005_unique_broker_login
Create Date: 2026-12-01 16:00:00

On PostgreSQL a table cannot be altered into a partitioned one, so the history is moved: the old
table is renamed, the partitioned one created under the old name with a partition for every day the
old one holds rows of (and a default partition for whatever no partition covers), the rows copied,
the old table dropped. The key becomes (account_id, taken_at), which the ingest step already keeps
unique; a database holding two snapshots of one account at the same moment is refused, as nothing
here can tell which one to keep. SQLite keeps the tables unpartitioned.
"""

import sqlalchemy as sa
from alembic import op

from tradeguard.store.types import ExactDecimal, UTCDateTime

revision = "0006_history_partitions"
down_revision = "0005_unique_broker_login"
branch_labels = None
depends_on = None

# The partitions live in a schema of their own, so that the tables of the default one stay what the
# models describe, and the history's days can be listed by name.
PARTITIONS_SCHEMA = "history_partitions"
_COLUMNS = "account_id, taken_at, received_at, balance, equity, margin, peak_equity, drawdown_pct"


def _id_type() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _snapshot_columns() -> list[sa.Column]:
    return [
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("balance", ExactDecimal(), nullable=False),
        sa.Column("equity", ExactDecimal(), nullable=False),
        sa.Column("margin", ExactDecimal(), nullable=True),
        sa.Column("peak_equity", ExactDecimal(), nullable=False),
        sa.Column("drawdown_pct", ExactDecimal(), nullable=False),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    duplicates = bind.execute(
        sa.text(
            "SELECT account_id, taken_at, COUNT(*) FROM account_snapshots "
            "GROUP BY account_id, taken_at HAVING COUNT(*) > 1 ORDER BY account_id, taken_at LIMIT 10"
        )
    ).all()
    if duplicates:
        raise RuntimeError(
            "the equity history holds several snapshots of one account taken at the same moment, which "
            "the new key (account_id, taken_at) allows once: "
            + "; ".join(
                f"account {account} at {taken_at} ({count} rows)" for account, taken_at, count in duplicates
            )
            + ". Keep one row of each (the ingest step never writes two), then migrate."
        )

    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_account_snapshots_account_taken")
    op.rename_table("account_snapshots", "account_snapshots_unpartitioned")
    if postgresql:
        op.execute(
            "ALTER TABLE account_snapshots_unpartitioned "
            "RENAME CONSTRAINT pk_account_snapshots TO pk_account_snapshots_unpartitioned"
        )

    op.create_table(
        "account_snapshots",
        sa.Column("account_id", _id_type(), nullable=False),
        *_snapshot_columns(),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_snapshots_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "taken_at", name=op.f("pk_account_snapshots")),
        postgresql_partition_by="RANGE (taken_at)",
    )
    op.create_table(
        "equity_minutes",
        sa.Column("account_id", _id_type(), nullable=False),
        sa.Column("minute", UTCDateTime(), nullable=False),
        sa.Column("snapshots", sa.Integer(), nullable=False),
        sa.Column("first_taken_at", UTCDateTime(), nullable=False),
        sa.Column("last_taken_at", UTCDateTime(), nullable=False),
        *(
            sa.Column(name, ExactDecimal(), nullable=False)
            for name in (
                "equity_first",
                "equity_last",
                "equity_min",
                "equity_max",
                "balance_first",
                "balance_last",
                "balance_min",
                "balance_max",
                "peak_equity",
                "drawdown_pct",
                "drawdown_max_pct",
            )
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_equity_minutes_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "minute", name=op.f("pk_equity_minutes")),
        postgresql_partition_by="RANGE (minute)",
    )
    op.create_table(
        "history_retention",
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("kept_from", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_history_retention")),
    )

    if postgresql:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITIONS_SCHEMA}")
        for table in ("account_snapshots", "equity_minutes"):
            op.execute(f"CREATE TABLE {PARTITIONS_SCHEMA}.{table}_default PARTITION OF {table} DEFAULT")
        # A partition for every day of the rows moved, named as the maintenance names them
        # (`domain/history.py`), so that it rolls them up and drops them once they are past the
        # retention; a day without rows needs none, and today's and the next are the maintenance's.
        days = bind.execute(
            sa.text(
                "SELECT DISTINCT date_trunc('day', taken_at AT TIME ZONE 'UTC') AS day "
                "FROM account_snapshots_unpartitioned ORDER BY day"
            )
        ).scalars()
        for day in days:
            op.execute(
                f"CREATE TABLE {PARTITIONS_SCHEMA}.account_snapshots_p{day:%Y%m%d} PARTITION OF account_snapshots "
                f"FOR VALUES FROM ('{day:%Y-%m-%d} 00:00:00+00') TO "
                f"(TIMESTAMPTZ '{day:%Y-%m-%d} 00:00:00+00' + INTERVAL '1 day')"
            )
    op.execute(
        f"INSERT INTO account_snapshots ({_COLUMNS}) SELECT {_COLUMNS} FROM account_snapshots_unpartitioned"
    )
    op.drop_table("account_snapshots_unpartitioned")


def downgrade() -> None:
    """Back to one unpartitioned table with an id per row, numbered in time order; the minute
    aggregates have no place in it and are dropped with their table."""
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    # SQLite's constraint names are the table's own; PostgreSQL's key name is an index name, taken
    # until the partitioned table is gone.
    key_name = "pk_account_snapshots_0005" if postgresql else "pk_account_snapshots"
    op.create_table(
        "account_snapshots_0005",
        sa.Column("id", _id_type(), nullable=False),
        sa.Column("account_id", _id_type(), nullable=False),
        *_snapshot_columns(),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_account_snapshots_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name=key_name),
    )
    op.execute(
        f"INSERT INTO account_snapshots_0005 ({_COLUMNS}) "
        f"SELECT {_COLUMNS} FROM account_snapshots ORDER BY taken_at, account_id"
    )
    op.drop_table("history_retention")
    op.drop_table("equity_minutes")
    op.drop_table("account_snapshots")
    if postgresql:
        op.execute(f"DROP SCHEMA IF EXISTS {PARTITIONS_SCHEMA}")
    op.rename_table("account_snapshots_0005", "account_snapshots")
    if postgresql:
        op.execute(
            "ALTER TABLE account_snapshots RENAME CONSTRAINT pk_account_snapshots_0005 TO pk_account_snapshots"
        )
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_account_snapshots_account_taken", ["account_id", "taken_at"], unique=False)
