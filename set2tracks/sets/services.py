"""Reading sets for browsing, and keeping their counters true."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, SQLColumnExpression, case, distinct, func, select, update
from sqlalchemy.orm import joinedload, selectinload, with_expression
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import UnaryExpression

from set2tracks.errors import NotFound
from set2tracks.extensions import db
from set2tracks.search import apply_search
from set2tracks.sets.models import Channel, DjSet, SetTrack
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import (
    ANONYMOUS,
    Viewer,
    may_see,
    recount_public_counters,
    recount_track_sets,
    set_coverage,
)

SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "youtube": (DjSet.youtube_published_at.desc().nulls_last(), DjSet.id.desc()),
    "added": (DjSet.published_at.desc().nulls_last(), DjSet.id.desc()),
    "popular": (Channel.follower_count.desc().nulls_last(), DjSet.id.desc()),
}
DEFAULT_SORT = "added"
PAGE_SIZE = 30


def visible_sets(viewer: Viewer = ANONYMOUS) -> Select[Any]:
    """Return a query for sets that everyone may see: published and not hidden.

    Each set comes with ``shown_track_count`` and ``shown_coverage``: its counters as
    ``viewer`` sees them, read from stored columns (nothing is counted per set here). Admins
    see every track, and so does a set's owner in that set (``may_see``): the full counters;
    everyone else reads the counters over public tracks only.
    """
    if viewer.is_admin:
        shown_tracks: SQLColumnExpression[Any] = DjSet.track_count
        shown_coverage: SQLColumnExpression[Any] = DjSet.coverage
    elif viewer.user_id is None:
        shown_tracks, shown_coverage = DjSet.public_track_count, DjSet.public_coverage
    else:
        own = DjSet.submitted_by_id == viewer.user_id
        shown_tracks = case((own, DjSet.track_count), else_=DjSet.public_track_count)
        shown_coverage = case((own, DjSet.coverage), else_=DjSet.public_coverage)
    return (
        select(DjSet)
        .outerjoin(DjSet.channel)
        .options(
            joinedload(DjSet.channel),
            with_expression(DjSet.shown_track_count, shown_tracks),
            with_expression(DjSet.shown_coverage, shown_coverage),
        )
        .where(DjSet.is_published.is_(True), DjSet.is_hidden.is_(False))
    )


def browse_sets(
    text: str = "", sort: str = DEFAULT_SORT, viewer: Viewer = ANONYMOUS
) -> Select[Any]:
    """Return visible sets matching ``text``, in the order ``sort`` names."""
    query = visible_sets(viewer)
    if text.strip():
        return apply_search(query, DjSet.search_document, text).order_by(DjSet.id.desc())
    return query.order_by(*SORTS[sort])


def get_visible_set(set_id: int, viewer: Viewer = ANONYMOUS) -> DjSet:
    """Return a visible set with its tracklist and tracks, or raise ``NotFound``.

    A private library track that ``viewer`` may not see reads as an unidentified row: no
    track, and no source, confidence or speed that would tell something matched there.
    """
    dj_set = db.session.scalar(
        visible_sets(viewer)
        .where(DjSet.id == set_id)
        .options(selectinload(DjSet.tracklist).joinedload(SetTrack.track).joinedload(Track.label))
    )
    if dj_set is None:
        raise NotFound("This set does not exist or is not published.")
    for row in dj_set.tracklist:
        if row.track is not None and not may_see(row.track, viewer, dj_set):
            # Loaded state only: nothing to flush, the stored tracklist keeps its match.
            for attribute in ("track", "track_id", "confidence", "speed", "found_by"):
                set_committed_value(row, attribute, None)
    return dj_set


def search_document(title: str, channel_name: str | None) -> str:
    """Return the text the set search indexes: its title and its channel's name."""
    return f"{title} {channel_name or ''}".strip()


def recount_set(set_id: int) -> None:
    """Recompute a set's counters, its channel's and its tracks' in SQL, then commit."""
    identified = SetTrack.set_id == set_id, SetTrack.track_id.is_not(None)
    distinct_tracks = (
        select(func.count(distinct(SetTrack.track_id))).where(*identified).scalar_subquery()
    )
    identified_seconds = (
        select(func.coalesce(func.sum(SetTrack.end_seconds - SetTrack.start_seconds), 0.0))
        .where(*identified)
        .scalar_subquery()
    )
    result = db.session.execute(
        update(DjSet)
        .where(DjSet.id == set_id)
        .values(track_count=distinct_tracks, coverage=set_coverage(identified_seconds))
        .returning(DjSet.channel_id)
    ).first()
    if result is None:
        raise NotFound("This set does not exist.")
    recount_public_counters([set_id])
    if result.channel_id is not None:
        recount_channel(result.channel_id)
    track_ids = db.session.scalars(select(SetTrack.track_id).where(*identified).distinct()).all()
    recount_track_sets([track_id for track_id in track_ids if track_id is not None])
    db.session.commit()


def recount_channel(channel_id: int) -> None:
    """Recompute how many visible sets a channel has (no commit)."""
    count = (
        select(func.count(DjSet.id))
        .where(
            DjSet.channel_id == channel_id,
            DjSet.is_published.is_(True),
            DjSet.is_hidden.is_(False),
        )
        .scalar_subquery()
    )
    db.session.execute(update(Channel).where(Channel.id == channel_id).values(set_count=count))


def iso_duration(seconds: float) -> str:
    """Return ``seconds`` as an ISO 8601 duration (``PT1H2M5S``)."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + f"{secs}S"


def video_json_ld(dj_set: DjSet, page_url: str) -> dict[str, Any] | None:
    """Describe a YouTube set for search engines: a VideoObject with one Clip per track."""
    if dj_set.video_id is None:
        return None
    clips = [
        {
            "@type": "Clip",
            "name": f"{row.track.artist} - {row.track.title}",
            "startOffset": int(row.start_seconds),
            "endOffset": int(row.end_seconds),
            "url": f"{page_url}?t={int(row.start_seconds)}",
        }
        for row in dj_set.tracklist
        if row.track is not None
    ]
    document: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": dj_set.title,
        "description": dj_set.description or dj_set.title,
        "thumbnailUrl": dj_set.thumbnail_url
        or f"https://i.ytimg.com/vi/{dj_set.video_id}/hqdefault.jpg",
        "duration": iso_duration(dj_set.duration_seconds),
        "embedUrl": f"https://www.youtube-nocookie.com/embed/{dj_set.video_id}",
        "hasPart": clips,
    }
    if dj_set.youtube_published_at is not None:
        document["uploadDate"] = dj_set.youtube_published_at.isoformat()
    return document
