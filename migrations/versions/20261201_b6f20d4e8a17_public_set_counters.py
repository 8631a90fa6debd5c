"""Sets store their counters over public tracks: browse pages read them, never count them.

``sets.public_track_count`` and ``sets.public_coverage``: the distinct public tracks a set
plays and the share of its duration they cover, what anonymous visitors and plain users see.
The backfill computes them from ``set_tracks`` and ``tracks.is_public``, as ``recount_set``
does. Plain ``add_column``: SQLite adds a column without rebuilding the table.

Revision: b6f20d4e8a17
Parent: e5d1a7c40b93
Created: 2026-12-01 04:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b6f20d4e8a17"
down_revision = "e5d1a7c40b93"
branch_labels = None
depends_on = None

sets = sa.table(
    "sets",
    sa.column("id", sa.Integer),
    sa.column("duration_seconds", sa.Integer),
    sa.column("public_track_count", sa.Integer),
    sa.column("public_coverage", sa.Float),
)
set_tracks = sa.table(
    "set_tracks",
    sa.column("set_id", sa.Integer),
    sa.column("track_id", sa.Integer),
    sa.column("start_seconds", sa.Float),
    sa.column("end_seconds", sa.Float),
)
tracks = sa.table("tracks", sa.column("id", sa.Integer), sa.column("is_public", sa.Boolean))


def upgrade() -> None:
    op.add_column(
        "sets", sa.Column("public_track_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "sets", sa.Column("public_coverage", sa.Float(), server_default="0", nullable=False)
    )
    # The same SQL as tracks.services.recount_public_counters, frozen here.
    public_rows = (
        sa.select()
        .select_from(set_tracks)
        .join(tracks, tracks.c.id == set_tracks.c.track_id)
        .where(set_tracks.c.set_id == sets.c.id, tracks.c.is_public.is_(True))
    )
    count = public_rows.add_columns(
        sa.func.count(sa.distinct(set_tracks.c.track_id))
    ).scalar_subquery()
    seconds = public_rows.add_columns(
        sa.func.coalesce(sa.func.sum(set_tracks.c.end_seconds - set_tracks.c.start_seconds), 0.0)
    ).scalar_subquery()
    share = seconds / sa.func.nullif(sets.c.duration_seconds, 0)
    coverage = sa.func.coalesce(sa.case((share > 1.0, 1.0), else_=share), 0.0)
    op.execute(sets.update().values(public_track_count=count, public_coverage=coverage))


def downgrade() -> None:
    with op.batch_alter_table("sets") as batch_op:
        batch_op.drop_column("public_coverage")
        batch_op.drop_column("public_track_count")
