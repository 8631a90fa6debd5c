"""Accounts: remember-me token, email confirmation of registrations, API token expiry.

Revision: c7a3e91f5d24
Parent: a41c7e2d9b10
Created: 2026-12-01 03:30:00
"""

import sqlalchemy as sa
from alembic import op

import set2tracks.database

revision = "c7a3e91f5d24"
down_revision = "a41c7e2d9b10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("remember_token", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column(
                "email_confirmed_at",
                set2tracks.database.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    # Accounts from before confirmation existed were made by an admin or an invite: confirmed.
    op.execute("UPDATE users SET email_confirmed_at = created_at")
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("expires_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_confirmed_at")
        batch.drop_column("remember_token")
