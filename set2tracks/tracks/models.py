"""The catalogue: tracks, their labels and genres, and related tracks."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from set2tracks.database import TimestampMixin, search_index
from set2tracks.extensions import db

if TYPE_CHECKING:
    from set2tracks.fingerprint.models import LibraryFile

track_genres = Table(
    "track_genres",
    db.metadata,
    Column("track_id", ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", ForeignKey("genres.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Genre(db.Model):  # type: ignore[name-defined]
    __tablename__ = "genres"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)

    tracks: Mapped[list[Track]] = relationship(secondary=track_genres, back_populates="genres")


class Label(db.Model):  # type: ignore[name-defined]
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    track_count: Mapped[int] = mapped_column(Integer, default=0)

    tracks: Mapped[list[Track]] = relationship(back_populates="label")


class Track(TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "tracks"
    # SQLite would give a deleted track's id to the next one (old links, API caches).
    __table_args__ = (
        search_index("ix_tracks_search", "search_document"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # External keys; each unique when present (NULLs never collide in a unique constraint).
    shazam_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    spotify_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    apple_music_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    isrc: Mapped[str | None] = mapped_column(String(12), unique=True)
    library_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("library_files.id", ondelete="SET NULL"), unique=True
    )
    title: Mapped[str] = mapped_column(String(300))
    artist: Mapped[str] = mapped_column(String(300))
    album: Mapped[str | None] = mapped_column(String(300))
    label_id: Mapped[int | None] = mapped_column(
        ForeignKey("labels.id", ondelete="SET NULL"), index=True
    )
    release_date: Mapped[date | None] = mapped_column(Date)
    release_year: Mapped[int | None] = mapped_column(SmallInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    cover_url: Mapped[str | None] = mapped_column(String(500))
    preview_url: Mapped[str | None] = mapped_column(String(500))
    popularity: Mapped[int | None] = mapped_column(SmallInteger, index=True)
    set_count: Mapped[int] = mapped_column(Integer, default=0, index=True)
    related_fetched_at: Mapped[datetime | None]
    # False for a track that only a DJ's own library knows (file names, promos): admins and
    # the owners of sets it plays in see it; everyone else gets an unidentified row.
    is_public: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Title, artist and label name, kept by the service that saves the track.
    search_document: Mapped[str] = mapped_column(Text, default="")

    label: Mapped[Label | None] = relationship(back_populates="tracks")
    genres: Mapped[list[Genre]] = relationship(secondary=track_genres, back_populates="tracks")
    library_file: Mapped[LibraryFile | None] = relationship(back_populates="track")
    related: Mapped[list[RelatedTrack]] = relationship(
        foreign_keys="RelatedTrack.track_id",
        cascade="all, delete-orphan",
        order_by="RelatedTrack.position",
    )


Index("ix_tracks_created_at", Track.created_at)
Index("ix_tracks_release_date", Track.release_date)


class RelatedTrack(db.Model):  # type: ignore[name-defined]
    """An ordered "sounds like" link from one track to another."""

    __tablename__ = "related_tracks"
    __table_args__ = (UniqueConstraint("track_id", "position"),)

    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    related_track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    related_track: Mapped[Track] = relationship(foreign_keys=[related_track_id])


Index("ix_labels_name_lower", func.lower(Label.name))
