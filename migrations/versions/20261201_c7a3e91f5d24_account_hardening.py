"""Accounts: remember-me token, email confirmation of registrations, API token expiry.

Revision: c7a3e91f5d24
Parent: a41c7e2d9b10
Created: 2026-12-01 03:30:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

import set2tracks.database

revision = "c7a3e91f5d24"
down_revision = "a41c7e2d9b10"
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN, never a batch table rebuild: SQLite (3.35+) does both in place, and
# a rebuild would lose the expression index uq_users_email_lower.


def upgrade() -> None:
    op.add_column("users", sa.Column("remember_token", sa.String(length=64), nullable=True))
    op.add_column(
        "users",
        sa.Column(
            "email_confirmed_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True
        ),
    )
    # Accounts from before confirmation existed were made by an admin or an invite: confirmed.
    op.execute("UPDATE users SET email_confirmed_at = created_at")
    _end_every_session()
    op.add_column(
        "api_tokens",
        sa.Column("expires_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
    )


def _end_every_session() -> None:
    """Give every account a new session token: every session and cookie from before dies.

    Sessions from before this revision carry no sign-in time (no absolute lifetime) and old
    "keep me signed in" cookies hold the bare session token; none of them may live on.
    """
    connection = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("session_token", sa.String))
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(session_token=secrets.token_urlsafe(32))
        )


def downgrade() -> None:
    op.drop_column("api_tokens", "expires_at")
    op.drop_column("users", "email_confirmed_at")
    op.drop_column("users", "remember_token")
