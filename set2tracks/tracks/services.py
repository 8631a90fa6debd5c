"""Reading the catalogue, and keeping track counters true."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, distinct, func, or_, select, true, update
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from set2tracks.errors import NotFound
from set2tracks.extensions import db
from set2tracks.search import apply_search
from set2tracks.sets.models import DjSet, SetTrack
from set2tracks.tracks.models import Label, Track

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
    """Recompute in how many visible sets each track appears (no commit)."""
    if not track_ids:
        return
    count = (
        select(func.count(distinct(SetTrack.set_id)))
        .join(DjSet, DjSet.id == SetTrack.set_id)
        .where(
            SetTrack.track_id == Track.id,
            DjSet.is_published.is_(True),
            DjSet.is_hidden.is_(False),
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
