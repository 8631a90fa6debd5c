"""Reading the catalogue, the rules that create and retire its tracks, and its counters."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, distinct, exists, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from set2tracks.errors import NotFound
from set2tracks.extensions import db
from set2tracks.fingerprint.models import LibraryFile
from set2tracks.pipeline.plays import TrackRef
from set2tracks.search import apply_search
from set2tracks.sets.models import DjSet, SetTrack
from set2tracks.tracks.models import Label, Track

logger = logging.getLogger(__name__)

SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "newest": (Track.created_at.desc(), Track.id.desc()),
    "released": (Track.release_date.desc().nulls_last(), Track.id.desc()),
    "sets": (Track.set_count.desc(), Track.id.desc()),
    "popularity": (Track.popularity.desc().nulls_last(), Track.id.desc()),
}
DEFAULT_SORT = "newest"
PAGE_SIZE = 30


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the catalogue: private tracks depend on it."""

    user_id: int | None = None
    is_admin: bool = False


ANONYMOUS = Viewer()


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """Tracks ``viewer`` may see: public ones, and private ones for admins and set owners.

    A private track is one that only an operator's own library knows (its title may be a
    file name or an unreleased promo): the owner of a set it plays in may see it.
    """
    if viewer.is_admin:
        return true()
    if viewer.user_id is None:
        return Track.is_public.is_(True)
    in_own_set = (
        select(SetTrack.id)
        .join(DjSet, DjSet.id == SetTrack.set_id)
        .where(SetTrack.track_id == Track.id, DjSet.submitted_by_id == viewer.user_id)
        .exists()
    )
    return or_(Track.is_public.is_(True), in_own_set)


def may_see(track: Track, viewer: Viewer, dj_set: DjSet) -> bool:
    """Whether ``viewer`` may see ``track`` in the tracklist of ``dj_set``."""
    if track.is_public or viewer.is_admin:
        return True
    return viewer.user_id is not None and dj_set.submitted_by_id == viewer.user_id


def browse_tracks(
    text: str = "", sort: str = DEFAULT_SORT, viewer: Viewer = ANONYMOUS
) -> Select[Any]:
    """Return tracks matching ``text`` (title, artist, label), in the order ``sort`` names."""
    query = (
        select(Track)
        .where(visible_to(viewer))
        .options(joinedload(Track.label), selectinload(Track.genres))
    )
    if text.strip():
        return apply_search(query, Track.search_document, text).order_by(Track.id.desc())
    return query.order_by(*SORTS[sort])


def get_track(track_id: int, viewer: Viewer = ANONYMOUS) -> Track:
    """Return a track ``viewer`` may see with its label and genres, or raise ``NotFound``."""
    track = db.session.scalar(
        select(Track)
        .where(Track.id == track_id, visible_to(viewer))
        .options(joinedload(Track.label), selectinload(Track.genres))
    )
    if track is None:
        raise NotFound("This track does not exist.")
    return track


def publish_library_tracks(library_file_ids: Sequence[int]) -> list[Track]:
    """Make the catalogue tracks of these library files public; return them."""
    tracks = list(
        db.session.scalars(select(Track).where(Track.library_file_id.in_(library_file_ids)))
    )
    for track in tracks:
        track.is_public = True
    db.session.flush()
    recount_public_counters(
        db.session.scalars(
            select(SetTrack.set_id)
            .where(SetTrack.track_id.in_([track.id for track in tracks]))
            .distinct()
        ).all()
    )
    db.session.commit()
    return tracks


def search_document(title: str, artist: str, label: Label | None) -> str:
    """Return the text the track search indexes: title, artist and label name."""
    return " ".join(part for part in (title, artist, label.name if label else "") if part)


def recount_track_sets(track_ids: Sequence[int]) -> None:
    """Recompute in how many sets everyone may see each track appears (no commit).

    Private sets (uploads not published by their submitter) do not count: the number is
    shown to everyone.
    """
    if not track_ids:
        return
    count = (
        select(func.count(distinct(SetTrack.set_id)))
        .join(DjSet, DjSet.id == SetTrack.set_id)
        .where(
            SetTrack.track_id == Track.id,
            DjSet.is_published.is_(True),
            DjSet.is_hidden.is_(False),
            DjSet.is_private.is_(False),
        )
        .scalar_subquery()
    )
    db.session.execute(update(Track).where(Track.id.in_(track_ids)).values(set_count=count))


def set_coverage(identified_seconds: ColumnElement[Any]) -> ColumnElement[float]:
    """The share of the ``DjSet`` row's duration that ``identified_seconds`` covers, 0 to 1."""
    share = identified_seconds / func.nullif(DjSet.duration_seconds, 0)
    return func.coalesce(case((share > 1.0, 1.0), else_=share), 0.0)


def recount_public_counters(set_ids: Sequence[int]) -> None:
    """Recompute the public track count and coverage of these sets in SQL (no commit).

    Called whenever a set's tracklist changes and whenever a track it plays turns public:
    anonymous visitors and plain users read these stored counters, never a live count.
    """
    if not set_ids:
        return
    public_rows = (
        select()
        .select_from(SetTrack)
        .join(Track, Track.id == SetTrack.track_id)
        .where(SetTrack.set_id == DjSet.id, Track.is_public.is_(True))
    )
    public_tracks = public_rows.add_columns(
        func.count(distinct(SetTrack.track_id))
    ).scalar_subquery()
    public_seconds = public_rows.add_columns(
        func.coalesce(func.sum(SetTrack.end_seconds - SetTrack.start_seconds), 0.0)
    ).scalar_subquery()
    db.session.execute(
        update(DjSet)
        .where(DjSet.id.in_(set_ids))
        .values(public_track_count=public_tracks, public_coverage=set_coverage(public_seconds))
    )


# Creating and retiring catalogue tracks: the one place these rules live.

UNKNOWN_ARTIST = "Unknown artist"
UNTITLED = "Untitled"
ISRC_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{3}\d{7}")
# Column widths (tracks.title, artist, album; tracks.shazam_key).
TEXT_LENGTH = 300
SHAZAM_KEY_LENGTH = 32
# Attempts at finding or creating one track when other workers keep winning the race.
CREATE_ATTEMPTS = 3


def normal_isrc(raw: str | None) -> str | None:
    """Return an ISRC as stored (``GBAYE0800001``), or None when ``raw`` is not one."""
    if raw is None:
        return None
    candidate = raw.replace("-", "").replace(" ", "").upper()
    return candidate if ISRC_PATTERN.fullmatch(candidate) else None


def link_library_track(library_file: LibraryFile) -> Track:
    """Give a new library file its catalogue track and return it (no commit).

    The track is the catalogue's one with the file's ISRC when no other library file stands
    for it, else a new track from the file's tags, private until ``flask library publish``
    (only the operator's library knows it: its title may be a file name or a promo's).
    """
    isrc = normal_isrc(library_file.isrc)
    if isrc is not None:
        existing = db.session.scalar(
            select(Track).where(Track.isrc == isrc, Track.library_file_id.is_(None))
        )
        if existing is not None:
            library_file.track = existing
            return existing
        if db.session.scalar(select(exists().where(Track.isrc == isrc))):
            isrc = None  # another library file already stands for this recording
    title = _text(library_file.title) or UNTITLED
    artist = _text(library_file.artist) or UNKNOWN_ARTIST
    track = Track(
        title=title,
        artist=artist,
        album=_text(library_file.album),
        isrc=isrc,
        duration_seconds=library_file.duration_seconds,
        search_document=search_document(title, artist, None),
        is_public=False,
    )
    library_file.track = track
    return track


def forget_library_file(library_file_id: int) -> None:
    """Delete a library file's row, and its catalogue track if nothing else needs it (no commit).

    A track a tracklist uses, or one the catalogue knew before the file was linked to it
    (it has a Shazam, Spotify or Apple Music key), stays, unlinked.
    """
    library_file = db.session.get(LibraryFile, library_file_id)
    if library_file is None:
        return
    track = library_file.track
    db.session.delete(library_file)
    if track is None:
        return
    known_elsewhere = track.shazam_key or track.spotify_id or track.apple_music_id
    if not known_elsewhere and not db.session.scalar(
        select(exists().where(SetTrack.track_id == track.id))
    ):
        db.session.delete(track)


def get_or_create_track(ref: TrackRef) -> Track | None:
    """Return the catalogue track ``ref`` names, creating it when new (no commit).

    Found by any key, in this order: the track of the library file, the Shazam key, the
    ISRC. None when nothing can name it: a ref without a key (nothing would find that track
    again), or one whose library file was removed meanwhile and whose other keys find no
    track (a removed file's tags are private: never the makings of a public track).

    Race-safe: the insert runs in a savepoint; when another worker inserted the same key
    first (an IntegrityError once it commits), the savepoint is rolled back and the track
    looked up again.
    """
    key = ref.shazam_key
    shazam_key = key if key and len(key) <= SHAZAM_KEY_LENGTH else None
    isrc = normal_isrc(ref.isrc)
    if ref.library_file_id is None and shazam_key is None and isrc is None:
        return None
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        library_file = (
            db.session.get(LibraryFile, ref.library_file_id, populate_existing=attempt > 1)
            if ref.library_file_id is not None
            else None
        )
        if library_file is not None and library_file.track is not None:
            return library_file.track
        found = _track_by_keys(shazam_key, isrc)
        if found is not None:
            return found
        if ref.library_file_id is not None and library_file is None:
            logger.info("library file %s was removed: its rows become unknown", ref.library_file_id)
            return None
        savepoint = db.session.begin_nested()
        try:
            if library_file is not None:
                track = link_library_track(library_file)
            else:
                track = _new_public_track(ref, shazam_key, isrc)
                db.session.add(track)
            db.session.flush()
        except IntegrityError:
            savepoint.rollback()
            logger.info("track %r was saved by another worker meanwhile: looking it up", ref.title)
            continue
        savepoint.commit()
        return track
    raise RuntimeError(f"could not save the track {ref.title!r}: other workers kept winning")


def _track_by_keys(shazam_key: str | None, isrc: str | None) -> Track | None:
    for column, value in ((Track.shazam_key, shazam_key), (Track.isrc, isrc)):
        if value is not None:
            track = db.session.scalar(select(Track).where(column == value))
            if track is not None:
                return track
    return None


def _new_public_track(ref: TrackRef, shazam_key: str | None, isrc: str | None) -> Track:
    title = _text(ref.title) or UNTITLED
    artist = _text(ref.artist) or UNKNOWN_ARTIST
    return Track(
        title=title,
        artist=artist,
        album=_text(ref.album),
        shazam_key=shazam_key,
        isrc=isrc,
        search_document=search_document(title, artist, None),
        is_public=True,
    )


def _text(value: str | None) -> str | None:
    """A tag as a column holds it: trimmed, at most ``TEXT_LENGTH`` characters, None if empty."""
    if value is None:
        return None
    return value.strip()[:TEXT_LENGTH].strip() or None
