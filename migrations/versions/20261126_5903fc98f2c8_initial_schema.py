"""Initial schema: accounts, sets, tracklists, submissions, catalogue, own library.

The full-text indexes are GIN indexes on a tsvector expression and exist on PostgreSQL
only; SQLite searches with LIKE instead (see set2tracks/search.py).

Revision: 5903fc98f2c8
Parent:
Created: 2026-11-26 08:19:43.920284
"""

import sqlalchemy as sa
from alembic import op

import set2tracks.database

revision = "5903fc98f2c8"
down_revision = None
branch_labels = None
depends_on = None

SEARCH_VECTOR = "to_tsvector('simple'::regconfig, coalesce(search_document, ''))"


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("youtube_channel_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("follower_count", sa.BigInteger(), nullable=True),
        sa.Column("is_followed", sa.Boolean(), nullable=False),
        sa.Column("is_hidden", sa.Boolean(), nullable=False),
        sa.Column("set_count", sa.Integer(), nullable=False),
        sa.Column(
            "last_crawled_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("youtube_channel_id", name=op.f("uq_channels_youtube_channel_id")),
    )
    op.create_index("ix_channels_created_at", "channels", ["created_at"], unique=False)
    op.create_index(
        "ix_channels_followed",
        "channels",
        ["last_crawled_at"],
        unique=False,
        postgresql_where=sa.text("is_followed IS true"),
        sqlite_where=sa.text("is_followed IS true"),
    )
    op.create_index(
        op.f("ix_channels_follower_count"), "channels", ["follower_count"], unique=False
    )
    op.create_index(
        "ix_channels_name_lower",
        "channels",
        [sa.literal_column("lower(name)")],
        unique=False,
    )
    op.create_table(
        "genres",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genres")),
        sa.UniqueConstraint("name", name=op.f("uq_genres_name")),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("track_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("name", name=op.f("uq_labels_name")),
    )
    op.create_index(
        "ix_labels_name_lower",
        "labels",
        [sa.literal_column("lower(name)")],
        unique=False,
    )
    op.create_table(
        "library_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("artist", sa.String(length=300), nullable=True),
        sa.Column("album", sa.String(length=300), nullable=True),
        sa.Column("isrc", sa.String(length=12), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("fingerprint_count", sa.Integer(), nullable=False),
        sa.Column("indexed_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_files")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_library_files_content_hash")),
        sa.UniqueConstraint("path", name=op.f("uq_library_files_path")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("is_premium", sa.Boolean(), nullable=False),
        sa.Column("is_disabled", sa.Boolean(), nullable=False),
        sa.Column("session_token", sa.String(length=64), nullable=False),
        sa.Column(
            "last_login_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("session_token", name=op.f("uq_users_session_token")),
    )
    op.create_index(
        "uq_users_email_lower",
        "users",
        [sa.literal_column("lower(email)")],
        unique=True,
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_used_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("revoked_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("expires_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("used_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_invites_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["used_by_id"],
            ["users.id"],
            name=op.f("fk_invites_used_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_invites_code_hash")),
    )
    op.create_index(op.f("ix_invites_created_by_id"), "invites", ["created_by_id"], unique=False)
    op.create_index(op.f("ix_invites_used_by_id"), "invites", ["used_by_id"], unique=False)
    op.create_table(
        "sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "youtube",
                "upload",
                name="set_source",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("video_id", sa.String(length=11), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column(
            "youtube_published_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("thumbnail_url", sa.String(length=500), nullable=True),
        sa.Column("is_embeddable", sa.Boolean(), nullable=False),
        sa.Column("chapters", sa.JSON(), nullable=False),
        sa.Column("view_count", sa.BigInteger(), nullable=True),
        sa.Column("like_count", sa.BigInteger(), nullable=True),
        sa.Column("track_count", sa.Integer(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("is_published", sa.Boolean(), nullable=False),
        sa.Column("is_hidden", sa.Boolean(), nullable=False),
        sa.Column(
            "published_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("submitted_by_id", sa.Integer(), nullable=True),
        sa.Column("search_document", sa.Text(), nullable=False),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(source = 'youtube' AND video_id IS NOT NULL) OR source = 'upload'",
            name=op.f("ck_sets_youtube_has_video_id"),
        ),
        sa.CheckConstraint(
            "coverage >= 0 AND coverage <= 1", name=op.f("ck_sets_coverage_is_share")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_sets_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"],
            ["users.id"],
            name=op.f("fk_sets_submitted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sets")),
        sa.UniqueConstraint("video_id", name=op.f("uq_sets_video_id")),
    )
    op.create_index(
        "ix_sets_channel_id_youtube_published_at",
        "sets",
        ["channel_id", "youtube_published_at"],
        unique=False,
    )
    op.create_index(op.f("ix_sets_submitted_by_id"), "sets", ["submitted_by_id"], unique=False)
    op.create_index(
        "ix_sets_visible_published_at",
        "sets",
        ["published_at"],
        unique=False,
        postgresql_where=sa.text("is_published IS true AND is_hidden IS false"),
        sqlite_where=sa.text("is_published IS true AND is_hidden IS false"),
    )
    op.create_index(
        "ix_sets_visible_youtube_published_at",
        "sets",
        ["youtube_published_at"],
        unique=False,
        postgresql_where=sa.text("is_published IS true AND is_hidden IS false"),
        sqlite_where=sa.text("is_published IS true AND is_hidden IS false"),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shazam_key", sa.String(length=32), nullable=True),
        sa.Column("spotify_id", sa.String(length=40), nullable=True),
        sa.Column("apple_music_id", sa.String(length=32), nullable=True),
        sa.Column("isrc", sa.String(length=12), nullable=True),
        sa.Column("library_file_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("artist", sa.String(length=300), nullable=False),
        sa.Column("album", sa.String(length=300), nullable=True),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("release_date", sa.Date(), nullable=True),
        sa.Column("release_year", sa.SmallInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("cover_url", sa.String(length=500), nullable=True),
        sa.Column("preview_url", sa.String(length=500), nullable=True),
        sa.Column("popularity", sa.SmallInteger(), nullable=True),
        sa.Column("set_count", sa.Integer(), nullable=False),
        sa.Column(
            "related_fetched_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("search_document", sa.Text(), nullable=False),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_tracks_label_id_labels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["library_file_id"],
            ["library_files.id"],
            name=op.f("fk_tracks_library_file_id_library_files"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("apple_music_id", name=op.f("uq_tracks_apple_music_id")),
        sa.UniqueConstraint("isrc", name=op.f("uq_tracks_isrc")),
        sa.UniqueConstraint("library_file_id", name=op.f("uq_tracks_library_file_id")),
        sa.UniqueConstraint("shazam_key", name=op.f("uq_tracks_shazam_key")),
        sa.UniqueConstraint("spotify_id", name=op.f("uq_tracks_spotify_id")),
    )
    op.create_index("ix_tracks_created_at", "tracks", ["created_at"], unique=False)
    op.create_index(op.f("ix_tracks_label_id"), "tracks", ["label_id"], unique=False)
    op.create_index(op.f("ix_tracks_popularity"), "tracks", ["popularity"], unique=False)
    op.create_index("ix_tracks_release_date", "tracks", ["release_date"], unique=False)
    op.create_index(op.f("ix_tracks_set_count"), "tracks", ["set_count"], unique=False)
    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email_when_ready", sa.Boolean(), nullable=False),
        sa.Column("play_sound_when_ready", sa.Boolean(), nullable=False),
        sa.Column("theme", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "theme IN ('system', 'light', 'dark')",
            name=op.f("ck_user_preferences_theme_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_preferences")),
    )
    op.create_table(
        "browsing_history",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column(
            "last_viewed_at",
            set2tracks.database.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["sets.id"],
            name=op.f("fk_browsing_history_set_id_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_browsing_history_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "set_id", name=op.f("pk_browsing_history")),
    )
    op.create_index("ix_browsing_history_set_id", "browsing_history", ["set_id"], unique=False)
    op.create_index(
        "ix_browsing_history_user_id_last_viewed_at",
        "browsing_history",
        ["user_id", "last_viewed_at"],
        unique=False,
    )
    op.create_table(
        "related_tracks",
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("related_track_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["related_track_id"],
            ["tracks.id"],
            name=op.f("fk_related_tracks_related_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_related_tracks_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "related_track_id", name=op.f("pk_related_tracks")),
        sa.UniqueConstraint(
            "track_id", "position", name=op.f("uq_related_tracks_track_id_position")
        ),
    )
    op.create_index(
        op.f("ix_related_tracks_related_track_id"),
        "related_tracks",
        ["related_track_id"],
        unique=False,
    )
    op.create_table(
        "set_tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("start_seconds", sa.Float(), nullable=False),
        sa.Column("end_seconds", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("speed", sa.Float(), nullable=True),
        sa.Column(
            "found_by",
            sa.Enum(
                "library",
                "shazam",
                "chapter",
                name="found_by",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.CheckConstraint(
            "start_seconds >= 0 AND end_seconds >= start_seconds",
            name=op.f("ck_set_tracks_time_order"),
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["sets.id"],
            name=op.f("fk_set_tracks_set_id_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_set_tracks_track_id_tracks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_set_tracks")),
        sa.UniqueConstraint("set_id", "position", name=op.f("uq_set_tracks_set_id_position")),
    )
    op.create_index(op.f("ix_set_tracks_track_id"), "set_tracks", ["track_id"], unique=False)
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "youtube",
                "upload",
                name="submission_source",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("video_id", sa.String(length=11), nullable=True),
        sa.Column("upload_path", sa.String(length=500), nullable=True),
        sa.Column("upload_name", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "waiting",
                "published",
                "failed",
                "discarded",
                "cancelled",
                name="submission_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", set2tracks.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("set_id", sa.Integer(), nullable=True),
        sa.Column("notify_by_email", sa.Boolean(), nullable=False),
        sa.Column("created_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", set2tracks.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(source = 'youtube' AND video_id IS NOT NULL) OR (source = 'upload' AND upload_path IS NOT NULL)",
            name=op.f("ck_submissions_has_source"),
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 100",
            name=op.f("ck_submissions_progress_percent"),
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["sets.id"],
            name=op.f("fk_submissions_set_id_sets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_submissions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(
        "ix_submissions_queue",
        "submissions",
        ["status", sa.literal_column("priority DESC"), "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_submissions_set_id"), "submissions", ["set_id"], unique=False)
    op.create_index(
        "ix_submissions_user_id_created_at",
        "submissions",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_submissions_video_id"), "submissions", ["video_id"], unique=False)
    op.create_index(
        "uq_submissions_active_video_id",
        "submissions",
        ["video_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running', 'waiting')"),
        sqlite_where=sa.text("status IN ('queued', 'running', 'waiting')"),
    )
    op.create_table(
        "track_genres",
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"],
            ["genres.id"],
            name=op.f("fk_track_genres_genre_id_genres"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_track_genres_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "genre_id", name=op.f("pk_track_genres")),
    )
    op.create_index(op.f("ix_track_genres_genre_id"), "track_genres", ["genre_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for table in ("sets", "tracks"):
            op.create_index(
                f"ix_{table}_search",
                table,
                [sa.text(SEARCH_VECTOR)],
                postgresql_using="gin",
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_tracks_search", table_name="tracks")
        op.drop_index("ix_sets_search", table_name="sets")
    op.drop_index(op.f("ix_track_genres_genre_id"), table_name="track_genres")
    op.drop_table("track_genres")
    op.drop_index(
        "uq_submissions_active_video_id",
        table_name="submissions",
        postgresql_where=sa.text("status IN ('queued', 'running', 'waiting')"),
        sqlite_where=sa.text("status IN ('queued', 'running', 'waiting')"),
    )
    op.drop_index(op.f("ix_submissions_video_id"), table_name="submissions")
    op.drop_index("ix_submissions_user_id_created_at", table_name="submissions")
    op.drop_index(op.f("ix_submissions_set_id"), table_name="submissions")
    op.drop_index("ix_submissions_queue", table_name="submissions")
    op.drop_table("submissions")
    op.drop_index(op.f("ix_set_tracks_track_id"), table_name="set_tracks")
    op.drop_table("set_tracks")
    op.drop_index(op.f("ix_related_tracks_related_track_id"), table_name="related_tracks")
    op.drop_table("related_tracks")
    op.drop_index("ix_browsing_history_user_id_last_viewed_at", table_name="browsing_history")
    op.drop_index("ix_browsing_history_set_id", table_name="browsing_history")
    op.drop_table("browsing_history")
    op.drop_table("user_preferences")
    op.drop_index(op.f("ix_tracks_set_count"), table_name="tracks")
    op.drop_index("ix_tracks_release_date", table_name="tracks")
    op.drop_index(op.f("ix_tracks_popularity"), table_name="tracks")
    op.drop_index(op.f("ix_tracks_label_id"), table_name="tracks")
    op.drop_index("ix_tracks_created_at", table_name="tracks")
    op.drop_table("tracks")
    op.drop_index(
        "ix_sets_visible_youtube_published_at",
        table_name="sets",
        postgresql_where=sa.text("is_published IS true AND is_hidden IS false"),
        sqlite_where=sa.text("is_published IS true AND is_hidden IS false"),
    )
    op.drop_index(
        "ix_sets_visible_published_at",
        table_name="sets",
        postgresql_where=sa.text("is_published IS true AND is_hidden IS false"),
        sqlite_where=sa.text("is_published IS true AND is_hidden IS false"),
    )
    op.drop_index(op.f("ix_sets_submitted_by_id"), table_name="sets")
    op.drop_index("ix_sets_channel_id_youtube_published_at", table_name="sets")
    op.drop_table("sets")
    op.drop_index(op.f("ix_invites_used_by_id"), table_name="invites")
    op.drop_index(op.f("ix_invites_created_by_id"), table_name="invites")
    op.drop_table("invites")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_table("users")
    op.drop_table("library_files")
    op.drop_index("ix_labels_name_lower", table_name="labels")
    op.drop_table("labels")
    op.drop_table("genres")
    op.drop_index("ix_channels_name_lower", table_name="channels")
    op.drop_index(op.f("ix_channels_follower_count"), table_name="channels")
    op.drop_index(
        "ix_channels_followed",
        table_name="channels",
        postgresql_where=sa.text("is_followed IS true"),
        sqlite_where=sa.text("is_followed IS true"),
    )
    op.drop_index("ix_channels_created_at", table_name="channels")
    op.drop_table("channels")
