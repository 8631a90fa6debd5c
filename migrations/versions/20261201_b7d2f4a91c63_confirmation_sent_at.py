"""When a waiting registration's confirmation link was last emailed.

Registering again for a waiting address re-sends a link for the same registration, at most
once per 10 minutes: this column is what that limit is counted from. Waiting registrations
from before it count as sent when they were made.

Revision: b7d2f4a91c63
Parent: b6f20d4e8a17
Created: 2026-12-01 04:45:00
"""

import sqlalchemy as sa
from alembic import op

import set2tracks.database

revision = "b7d2f4a91c63"
down_revision = "b6f20d4e8a17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "confirmation_sent_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.execute(
        "UPDATE users SET confirmation_sent_at = created_at WHERE email_confirmed_at IS NULL"
    )


def downgrade() -> None:
    op.drop_column("users", "confirmation_sent_at")
