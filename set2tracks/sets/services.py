"""Reading sets for browsing, saving processed sets, and keeping their counters true."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Select,
    SQLColumnExpression,
    case,
    delete,
    distinct,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import joinedload, selectinload, with_expression
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import UnaryExpression

from set2tracks.database import utcnow
from set2tracks.errors import Conflict, NotFound
from set2tracks.extensions import db
from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.search import apply_search
from set2tracks.sets.models import (
    Channel,
    DjSet,
    FoundBy,
    SetSource,
    SetTrack,
    Submission,
    SubmissionStatus,
)
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import (
    ANONYMOUS,
    Viewer,
    get_or_create_track,
    may_see,
    recount_public_counters,
    recount_track_sets,
    set_coverage,
)

logger = logging.getLogger(__name__)

SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "youtube": (DjSet.youtube_published_at.desc().nulls_last(), DjSet.id.desc()),
    "added": (DjSet.published_at.desc().nulls_last(), DjSet.id.desc()),
    "popular": (Channel.follower_count.desc().nulls_last(), DjSet.id.desc()),
}
DEFAULT_SORT = "added"
PAGE_SIZE = 30


def visible_sets(viewer: Viewer = ANONYMOUS) -> Select[Any]:
    """Return a query for the sets ``viewer`` may see: published, not hidden, and public.

    A private set (an upload its submitter has not published) is shown to its submitter and
    admins only: to everyone else it does not exist.

    Each set comes with ``shown_track_count`` and ``shown_coverage``: its counters as
    ``viewer`` sees them, read from stored columns (nothing is counted per set here). Admins
    see every track, and so does a set's owner in that set (``may_see``): the full counters;
    everyone else reads the counters over public tracks only.
    """
    public = DjSet.is_private.is_(False)
    if viewer.is_admin:
        shown_tracks: SQLColumnExpression[Any] = DjSet.track_count
        shown_coverage: SQLColumnExpression[Any] = DjSet.coverage
        audience: SQLColumnExpression[bool] = true()
    elif viewer.user_id is None:
        shown_tracks, shown_coverage = DjSet.public_track_count, DjSet.public_coverage
        audience = public
    else:
        own = DjSet.submitted_by_id == viewer.user_id
        shown_tracks = case((own, DjSet.track_count), else_=DjSet.public_track_count)
        shown_coverage = case((own, DjSet.coverage), else_=DjSet.public_coverage)
        audience = or_(public, own)
    return (
        select(DjSet)
        .outerjoin(DjSet.channel)
        .options(
            joinedload(DjSet.channel),
            with_expression(DjSet.shown_track_count, shown_tracks),
            with_expression(DjSet.shown_coverage, shown_coverage),
        )
        .where(DjSet.is_published.is_(True), DjSet.is_hidden.is_(False), audience)
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
    recount_set_counters(set_id)
    db.session.commit()


def recount_set_counters(set_id: int, former_track_ids: Sequence[int] = ()) -> None:
    """Recompute a set's counters, its channel's and its tracks' in SQL (no commit).

    ``former_track_ids``: tracks the set's tracklist held before it changed, recounted too.
    """
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
    recount_track_sets(
        sorted({*former_track_ids, *(track_id for track_id in track_ids if track_id is not None)})
    )


def recount_channel(channel_id: int) -> None:
    """Recompute how many sets of a channel everyone may see (no commit)."""
    count = (
        select(func.count(DjSet.id))
        .where(
            DjSet.channel_id == channel_id,
            DjSet.is_published.is_(True),
            DjSet.is_hidden.is_(False),
            DjSet.is_private.is_(False),
        )
        .scalar_subquery()
    )
    db.session.execute(update(Channel).where(Channel.id == channel_id).values(set_count=count))


# Saving what the pipeline found.

UNTITLED_UPLOAD = "Untitled upload"
TITLE_LENGTH = 500  # sets.title


@dataclass(frozen=True)
class SetDetails:
    """What the pipeline learnt of a set besides its tracklist.

    Issue 11 adds YouTube's fields here (channel, description, dates, thumbnail, chapters),
    each with a default, so uploads keep passing only these.
    """

    duration_seconds: float
    title: str | None = None  # None: the upload's file name without its extension


class SubmissionNotRunning(Conflict):
    """The submission stopped running (cancelled meanwhile): its result was not saved."""


def save_submission_result(submission_id: int, rows: Sequence[Play], details: SetDetails) -> int:
    """Store a running submission's tracklist and publish it, in one transaction; return the set id.

    The submission's row is locked first (``SELECT .. FOR UPDATE``; SQLite has one writer
    anyway). A submission that is no longer running (cancelled meanwhile) raises
    ``SubmissionNotRunning``. Whatever fails, nothing is written and the session is rolled
    back (the lock released). An upload becomes a
    new set, private to its submitter and admins until they publish it; a submission that
    has a set already (reprocessing) gets that set's tracklist replaced, and its title,
    audience and publication date kept. Tracks are found or created by their keys; rows
    whose track cannot be named (a library file removed meanwhile) are unknown. Counters of
    the set, its channel and its former and new tracks are recomputed in SQL, so a second
    processing leaves them as the first did. Then the submission is published, at 100 %.
    """
    _check_rows(rows, details)
    try:
        return _save(submission_id, rows, details)
    except BaseException:
        # Whatever failed, nothing of this save stays pending in the caller's session.
        db.session.rollback()
        raise


def _save(submission_id: int, rows: Sequence[Play], details: SetDetails) -> int:
    submission = db.session.scalar(
        select(Submission)
        .where(Submission.id == submission_id)
        .with_for_update()
        # The job's session may hold this row from an earlier stage: read it as locked.
        .execution_options(populate_existing=True)
    )
    if submission is None:
        raise NotFound("This submission does not exist.")
    if submission.status is not SubmissionStatus.RUNNING:
        raise SubmissionNotRunning(
            f"This submission is {submission.status}: its result was not saved."
        )
    dj_set = db.session.get(DjSet, submission.set_id) if submission.set_id is not None else None
    reprocessing = dj_set is not None
    former_track_ids: list[int] = []
    if dj_set is None:
        dj_set = _new_set(submission, details)
    else:
        former_track_ids = [
            track_id
            for track_id in db.session.scalars(
                select(SetTrack.track_id).where(SetTrack.set_id == dj_set.id).distinct()
            )
            if track_id is not None
        ]
        db.session.execute(delete(SetTrack).where(SetTrack.set_id == dj_set.id))
        # The relationship still lists the deleted rows: forget them, load the new ones.
        db.session.expire(dj_set, ["tracklist"])
        dj_set.duration_seconds = round(details.duration_seconds)
    stored = _stored_rows(rows)
    for position, row in enumerate(stored):
        db.session.add(
            SetTrack(
                dj_set=dj_set,
                position=position,
                track=row.track,
                # To the millisecond: the tracklist's midpoints are float sums
                # (1648.0149999999999); rounding one value twice gives one result, so
                # neighbouring rows still touch.
                start_seconds=round(row.start, 3),
                end_seconds=round(row.end, 3),
                confidence=row.confidence,
                speed=row.speed,
                found_by=row.found_by,
            )
        )
    db.session.flush()
    recount_set_counters(dj_set.id, former_track_ids)
    submission.dj_set = dj_set
    submission.status = SubmissionStatus.PUBLISHED
    submission.progress = 100
    submission.finished_at = utcnow()
    db.session.commit()
    logger.info(
        "submission %s saved as set %s: %s rows%s",
        submission_id,
        dj_set.id,
        len(stored),
        " (reprocessed)" if reprocessing else "",
    )
    return dj_set.id


def _check_rows(rows: Sequence[Play], details: SetDetails) -> None:
    """Refuse rows no tracklist can hold before anything is locked or written (a bug)."""
    if not math.isfinite(details.duration_seconds) or details.duration_seconds < 0:
        raise ValueError(f"a set lasts a finite number of seconds, not {details.duration_seconds}")
    for position, row in enumerate(rows):
        if not (math.isfinite(row.start) and math.isfinite(row.end) and 0 <= row.start <= row.end):
            raise ValueError(f"row {position} runs from {row.start} to {row.end}")


def _new_set(submission: Submission, details: SetDetails) -> DjSet:
    if submission.source is not SetSource.UPLOAD:
        raise NotImplementedError("YouTube sets are saved from issue 11 on")
    title = _set_title(details.title) or _set_title(_stem(submission.upload_name))
    title = title or UNTITLED_UPLOAD
    dj_set = DjSet(
        source=SetSource.UPLOAD,
        title=title,
        duration_seconds=round(details.duration_seconds),
        submitted_by_id=submission.user_id,
        is_published=True,
        is_private=True,
        published_at=utcnow(),
        search_document=search_document(title, None),
    )
    db.session.add(dj_set)
    return dj_set


def _stem(file_name: str | None) -> str | None:
    """An uploaded file's name without folders (either slash) or extension."""
    if file_name is None:
        return None
    name = re.split(r"[\\/]", file_name)[-1]
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def _set_title(text: str | None) -> str | None:
    if text is None:
        return None
    return " ".join(text.split())[:TITLE_LENGTH].strip() or None


@dataclass(frozen=True)
class _StoredRow:
    start: float
    end: float
    track: Track | None
    confidence: float | None
    speed: float | None
    found_by: FoundBy | None


def _stored_rows(rows: Sequence[Play]) -> list[_StoredRow]:
    """The rows with their catalogue tracks; neighbours that name one track become one row.

    Two refs may name one catalogue track (a library file linked to a Shazam track), and a
    removed library file's rows become unknown next to other unknown rows.
    """
    tracks: dict[TrackRef, Track | None] = {}
    stored: list[_StoredRow] = []
    for row in rows:
        track = None
        if row.track is not None:
            if row.track not in tracks:
                tracks[row.track] = get_or_create_track(row.track)
            track = tracks[row.track]
        current = (
            _StoredRow(row.start, row.end, None, None, None, None)
            if track is None
            else _StoredRow(row.start, row.end, track, row.confidence, row.speed, row.found_by)
        )
        previous = stored[-1] if stored else None
        if previous is not None and previous.track is current.track:
            stored[-1] = _joined(previous, current)
        else:
            stored.append(current)
    return stored


def _joined(first: _StoredRow, second: _StoredRow) -> _StoredRow:
    """Two neighbouring rows of one track (or two unknown rows) as one."""
    confidences = [row.confidence for row in (first, second) if row.confidence is not None]
    timed = [(row.speed, row.end - row.start) for row in (first, second) if row.speed is not None]
    total = sum(length for _, length in timed)
    speed = sum(value * length for value, length in timed) / total if total > 0 else None
    stronger = first if (first.confidence or 0) >= (second.confidence or 0) else second
    return _StoredRow(
        start=first.start,
        end=second.end,
        track=first.track,
        confidence=max(confidences) if confidences else None,
        speed=timed[0][0] if len({value for value, _ in timed}) == 1 else speed,
        found_by=stronger.found_by,
    )


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
