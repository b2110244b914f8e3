"""data retention and the audit log: Store.retention_days, Customer.erased_at, audit_log

Every existing store keeps its recordings forever (retention_days NULL) until it sets a period.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import records.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch_op:
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", records.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("at", records.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_audit_log_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_audit_log_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.create_index(
            "ix_audit_log_store_action_at", ["store_id", "action", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index("ix_audit_log_store_action_at")
    op.drop_table("audit_log")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("stores") as batch_op:
        batch_op.drop_column("retention_days")
