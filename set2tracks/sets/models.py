"""Sets, the channels that publish them, their tracklists, submissions and history."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from set2tracks.database import TimestampMixin, search_index, utcnow
from set2tracks.extensions import db

if TYPE_CHECKING:
    from set2tracks.auth.models import User
    from set2tracks.tracks.models import Track


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """Store an enum as its string values with a CHECK constraint (no native PG type to migrate)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class SetSource(enum.StrEnum):
    YOUTUBE = "youtube"
    UPLOAD = "upload"


class SubmissionStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # premieres and live streams, retried at ``retry_at``
    PUBLISHED = "published"
    FAILED = "failed"
    DISCARDED = "discarded"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING, SubmissionStatus.WAITING)


class FoundBy(enum.StrEnum):
    LIBRARY = "library"
    SHAZAM = "shazam"
    CHAPTER = "chapter"


class Channel(TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    youtube_channel_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(500))
    follower_count: Mapped[int | None] = mapped_column(BigInteger, index=True)
    is_followed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    set_count: Mapped[int] = mapped_column(Integer, default=0)
    last_crawled_at: Mapped[datetime | None]

    sets: Mapped[list[DjSet]] = relationship(back_populates="channel")


Index("ix_channels_name_lower", func.lower(Channel.name))
Index("ix_channels_created_at", Channel.created_at)
Index(
    "ix_channels_followed",
    Channel.last_crawled_at,
    postgresql_where=Channel.is_followed.is_(True),
    sqlite_where=Channel.is_followed.is_(True),
)


class DjSet(TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "sets"
    __table_args__ = (
        CheckConstraint(
            "(source = 'youtube' AND video_id IS NOT NULL) OR source = 'upload'",
            name="youtube_has_video_id",
        ),
        CheckConstraint("coverage >= 0 AND coverage <= 1", name="coverage_is_share"),
        search_index("ix_sets_search", "search_document"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[SetSource] = mapped_column(_enum(SetSource, "set_source"))
    video_id: Mapped[str | None] = mapped_column(String(11), unique=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    youtube_published_at: Mapped[datetime | None]
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    is_embeddable: Mapped[bool] = mapped_column(Boolean, default=True)
    chapters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    view_count: Mapped[int | None] = mapped_column(BigInteger)
    like_count: Mapped[int | None] = mapped_column(BigInteger)
    # Every identified row, private library tracks included: what admins and the owner see.
    track_count: Mapped[int] = mapped_column(Integer, default=0)
    coverage: Mapped[float] = mapped_column(Float, default=0.0)
    # The same counters over public tracks only: what everyone else sees. Kept by
    # recount_set, and by tracks.services.recount_public_counters when a track is published.
    public_track_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    public_coverage: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # The counters one viewer sees, loaded by sets.services.visible_sets (None elsewhere).
    shown_track_count: Mapped[int | None] = query_expression()
    shown_coverage: Mapped[float | None] = query_expression()
    is_published: Mapped[bool] = mapped_column(Boolean, default=False)
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    # An uploaded recording is its submitter's (and admins') alone until they publish it.
    is_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    published_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Title and channel name, kept by the service that saves the set; full-text indexed.
    search_document: Mapped[str] = mapped_column(Text, default="")

    channel: Mapped[Channel | None] = relationship(back_populates="sets")
    submitted_by: Mapped[User | None] = relationship()
    tracklist: Mapped[list[SetTrack]] = relationship(
        back_populates="dj_set",
        cascade="all, delete-orphan",
        order_by="SetTrack.position",
    )

    @property
    def is_visible(self) -> bool:
        return self.is_published and not self.is_hidden


_visible_set = DjSet.is_published.is_(True) & DjSet.is_hidden.is_(False)
Index(
    "ix_sets_visible_youtube_published_at",
    DjSet.youtube_published_at,
    postgresql_where=_visible_set,
    sqlite_where=_visible_set,
)
Index(
    "ix_sets_visible_published_at",
    DjSet.published_at,
    postgresql_where=_visible_set,
    sqlite_where=_visible_set,
)
Index("ix_sets_channel_id_youtube_published_at", DjSet.channel_id, DjSet.youtube_published_at)


class SetTrack(db.Model):  # type: ignore[name-defined]
    """One row of a tracklist; ``track_id`` NULL marks a stretch nobody identified."""

    __tablename__ = "set_tracks"
    __table_args__ = (
        UniqueConstraint("set_id", "position"),
        CheckConstraint("start_seconds >= 0 AND end_seconds >= start_seconds", name="time_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("sets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    track_id: Mapped[int | None] = mapped_column(
        ForeignKey("tracks.id", ondelete="SET NULL"), index=True
    )
    start_seconds: Mapped[float] = mapped_column(Float)
    end_seconds: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    speed: Mapped[float | None] = mapped_column(Float)
    found_by: Mapped[FoundBy | None] = mapped_column(_enum(FoundBy, "found_by"))

    dj_set: Mapped[DjSet] = relationship(back_populates="tracklist")
    track: Mapped[Track | None] = relationship()


class Submission(TimestampMixin, db.Model):  # type: ignore[name-defined]
    """A request to process a set: the queue that the pipeline works through."""

    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(
            "(source = 'youtube' AND video_id IS NOT NULL)"
            " OR (source = 'upload' AND upload_path IS NOT NULL)",
            name="has_source",
        ),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_percent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[SetSource] = mapped_column(_enum(SetSource, "submission_source"))
    video_id: Mapped[str | None] = mapped_column(String(11), index=True)
    upload_path: Mapped[str | None] = mapped_column(String(500))
    upload_name: Mapped[str | None] = mapped_column(String(255))
    # The upload's SHA-256: the same file sent twice while the first is active is one submission.
    upload_sha256: Mapped[str | None] = mapped_column(String(64))
    upload_size: Mapped[int | None] = mapped_column(BigInteger)
    # Probed (uploads) or announced (YouTube) before any decoding.
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[SubmissionStatus] = mapped_column(
        _enum(SubmissionStatus, "submission_status"), default=SubmissionStatus.QUEUED
    )
    stage: Mapped[str | None] = mapped_column(String(32))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None]
    job_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Written by the running job at every stage: a running submission whose job is gone and
    # whose heartbeat is old was abandoned by a killed worker.
    heartbeat_at: Mapped[datetime | None]
    set_id: Mapped[int | None] = mapped_column(
        ForeignKey("sets.id", ondelete="SET NULL"), index=True
    )
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User | None] = relationship()
    dj_set: Mapped[DjSet | None] = relationship()
    attempt_log: Mapped[list[SubmissionAttempt]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        order_by="SubmissionAttempt.number",
    )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class SubmissionAttempt(db.Model):  # type: ignore[name-defined]
    """One run of a submission's job: when, how far it got and how it ended (kept for good)."""

    __tablename__ = "submission_attempts"
    __table_args__ = (UniqueConstraint("submission_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # running, published, retrying, failed, discarded, cancelled or abandoned
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    stage: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)

    submission: Mapped[Submission] = relationship(back_populates="attempt_log")


_active_submission = Submission.status.in_([status.value for status in ACTIVE_STATUSES])
# One live submission per video: a double click or a race gets the existing one, not a twin.
Index(
    "uq_submissions_active_video_id",
    Submission.video_id,
    unique=True,
    postgresql_where=_active_submission,
    sqlite_where=_active_submission,
)
Index(
    "ix_submissions_queue",
    Submission.status,
    Submission.priority.desc(),
    Submission.created_at,
)
Index("ix_submissions_user_id_created_at", Submission.user_id, Submission.created_at)
# The same upload twice from one user while the first is active: one submission.
Index(
    "uq_submissions_active_upload",
    Submission.user_id,
    Submission.upload_sha256,
    unique=True,
    postgresql_where=_active_submission,
    sqlite_where=_active_submission,
)


class BrowsingHistory(db.Model):  # type: ignore[name-defined]
    __tablename__ = "browsing_history"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    set_id: Mapped[int] = mapped_column(ForeignKey("sets.id", ondelete="CASCADE"), primary_key=True)
    last_viewed_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="history")
    dj_set: Mapped[DjSet] = relationship()


Index(
    "ix_browsing_history_user_id_last_viewed_at",
    BrowsingHistory.user_id,
    BrowsingHistory.last_viewed_at,
)
Index("ix_browsing_history_set_id", BrowsingHistory.set_id)
