"""The processing pipeline's bookkeeping: attempts, upload identity, private uploaded sets.

- ``submission_attempts``: one row per run of a submission's job, kept for good (when, how
  far it got, how it ended and why);
- ``submissions.upload_sha256`` / ``upload_size`` / ``duration_seconds``: what an upload is,
  probed before any decoding; one active submission per user and upload (a unique index, so
  two identical requests at once make one submission);
- ``submissions.heartbeat_at``: written at every stage, how a killed worker's submission
  is told from a running one;
- ``sets.is_private``: an uploaded set is its submitter's until they publish it.

Plain ``add_column``: SQLite adds these columns without rebuilding the tables.

Revision: d4b8e2a6c951
Parent: b7d2f4a91c63
Created: 2026-12-01 06:20:00
"""

import sqlalchemy as sa
from alembic import op

import set2tracks.database

revision = "d4b8e2a6c951"
down_revision = "b7d2f4a91c63"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running', 'waiting')")


def upgrade() -> None:
    op.create_table(
        "submission_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_attempts_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_attempts")),
        sa.UniqueConstraint(
            "submission_id", "number", name=op.f("uq_submission_attempts_submission_id_number")
        ),
    )
    op.add_column("sets", sa.Column("is_private", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("submissions", sa.Column("upload_sha256", sa.String(length=64), nullable=True))
    op.add_column("submissions", sa.Column("upload_size", sa.BigInteger(), nullable=True))
    op.add_column("submissions", sa.Column("duration_seconds", sa.Float(), nullable=True))
    op.add_column(
        "submissions",
        sa.Column("heartbeat_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_submissions_active_upload",
        "submissions",
        ["user_id", "upload_sha256"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_submissions_active_upload", table_name="submissions")
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("duration_seconds")
        batch_op.drop_column("upload_size")
        batch_op.drop_column("upload_sha256")
    with op.batch_alter_table("sets") as batch_op:
        batch_op.drop_column("is_private")
    op.drop_table("submission_attempts")
