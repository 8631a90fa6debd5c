"""Own library: private library tracks, and the segment that holds each file's fingerprints.

``tracks.is_public``: a track that only the own library knows is private (its title is a
file name or a promo's tag); existing ones become private. ``library_files.segment``: rows of
a file id in any other segment belong to a removed file whose id SQLite gave again; NULL
for files indexed before (found in whichever segment lists them).

Revision: c3e8f19a7d42
Parent: c7a3e91f5d24
Created: 2026-12-01 03:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c3e8f19a7d42"
down_revision = "c7a3e91f5d24"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch_op:
        batch_op.add_column(
            sa.Column("is_public", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.execute(
        "UPDATE tracks SET is_public = false WHERE library_file_id IS NOT NULL"
        " AND shazam_key IS NULL AND spotify_id IS NULL AND apple_music_id IS NULL"
    )
    with op.batch_alter_table("library_files") as batch_op:
        batch_op.add_column(sa.Column("segment", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_library_files_segment"), ["segment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("library_files") as batch_op:
        batch_op.drop_index(batch_op.f("ix_library_files_segment"))
        batch_op.drop_column("segment")
    with op.batch_alter_table("tracks") as batch_op:
        batch_op.drop_column("is_public")
