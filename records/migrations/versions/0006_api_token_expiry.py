"""api token expiry: every token gets an expires_at

Tokens that exist at the upgrade expire 90 days after it (the default api_token_days): none of
them stops working the moment Driveline is upgraded, and none lives forever; rotate them with
`driveline tokens create` before then (`driveline tokens list USER` shows when).

Revision ID: 0006
Revises: 0005
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import records.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

EXISTING_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", records.models.UTCDateTime(timezone=True), nullable=True)
        )
    tokens = sa.table(
        "api_tokens", sa.column("expires_at", records.models.UTCDateTime(timezone=True))
    )
    op.execute(tokens.update().values(expires_at=datetime.now(UTC) + EXISTING_LIFETIME))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at",
            existing_type=records.models.UTCDateTime(timezone=True),
            nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
