"""Own-library index: the committed fingerprint segment folders.

Revision: a41c7e2d9b10
Parent: 5903fc98f2c8
Created: 2026-11-26 11:30:00
"""

import sqlalchemy as sa
from alembic import op

import set2tracks.database

revision = "a41c7e2d9b10"
down_revision = "5903fc98f2c8"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fingerprint_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_fingerprint_segments_name")),
    )


def downgrade() -> None:
    op.drop_table("fingerprint_segments")
