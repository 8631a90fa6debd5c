"""Reading the catalogue, and keeping track counters true."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, distinct, func, select, update
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.sql.elements import UnaryExpression

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


def browse_tracks(text: str = "", sort: str = DEFAULT_SORT) -> Select[Any]:
    """Return tracks matching ``text`` (title, artist, label), in the order ``sort`` names."""
    query = select(Track).options(joinedload(Track.label), selectinload(Track.genres))
    if text.strip():
        return apply_search(query, Track.search_document, text).order_by(Track.id.desc())
    return query.order_by(*SORTS[sort])


def get_track(track_id: int) -> Track:
    """Return a track with its label and genres, or raise ``NotFound``."""
    track = db.session.scalar(
        select(Track)
        .where(Track.id == track_id)
        .options(joinedload(Track.label), selectinload(Track.genres))
    )
    if track is None:
        raise NotFound("This track does not exist.")
    return track


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
