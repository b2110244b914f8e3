"""masked outbound calls: store outbound policy, customer do-not-call

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("outbound", sa.JSON(), nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("do_not_call", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("do_not_call")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("outbound")
