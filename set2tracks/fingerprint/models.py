"""Files of a DJ's own music library, indexed for offline recognition."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from set2tracks.database import TimestampMixin
from set2tracks.extensions import db

if TYPE_CHECKING:
    from set2tracks.tracks.models import Track


class LibraryFile(TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "library_files"
    # SQLite would give a removed file's id to the next one (`--id`, old fingerprints).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    # SHA-256 of the audio file: the same music under another path is not indexed twice.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str | None] = mapped_column(String(300))
    artist: Mapped[str | None] = mapped_column(String(300))
    album: Mapped[str | None] = mapped_column(String(300))
    isrc: Mapped[str | None] = mapped_column(String(12))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    fingerprint_count: Mapped[int] = mapped_column(Integer, default=0)
    # NULL until every fingerprint of the file is stored: an interrupted run leaves it NULL.
    indexed_at: Mapped[datetime | None]
    # The segment holding this file's fingerprints: rows for this id in any other segment
    # belong to a removed file whose id was reused (SQLite reuses the highest id). NULL for
    # files indexed before this was recorded: found in whichever segment lists them.
    segment: Mapped[str | None] = mapped_column(String(64), index=True)

    track: Mapped[Track | None] = relationship(back_populates="library_file")


class FingerprintSegment(TimestampMixin, db.Model):  # type: ignore[name-defined]
    """One committed segment folder of the fingerprint index (see fingerprint/index.py).

    A folder under FINGERPRINT_DIR without a row here was never committed (an interrupted
    run, or a segment merged away) and is deleted by the next writer.
    """

    __tablename__ = "fingerprint_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
