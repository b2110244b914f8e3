"""integrations: the DMS's own credential for the webhooks (an HMAC secret per store)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import records.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", records.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", records.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", records.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_integrations_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("key_id", name=op.f("uq_integrations_key_id")),
        sa.UniqueConstraint("store_id", "name", name=op.f("uq_integrations_store_id")),
    )
    with op.batch_alter_table("integrations") as batch_op:
        batch_op.create_index(batch_op.f("ix_integrations_store_id"), ["store_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("integrations") as batch_op:
        batch_op.drop_index(batch_op.f("ix_integrations_store_id"))
    op.drop_table("integrations")
