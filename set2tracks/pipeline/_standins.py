"""Stand-ins for fix/catalogue's tracklist and save rules, deleted when that branch merges.

Same names and signatures as the real ones (``pipeline.tracklist.build_tracklist``,
``sets.services.save_submission_result``, ``SetDetails``); just enough to run the job end
to end meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from set2tracks.database import utcnow
from set2tracks.extensions import db
from set2tracks.pipeline.plays import Play
from set2tracks.sets.models import DjSet, SetSource, SetTrack, Submission, SubmissionStatus
from set2tracks.tracks.models import Track


@dataclass(frozen=True)
class SetDetails:
    title: str | None
    duration_seconds: float


def build_tracklist(plays: Sequence[Play], duration: float) -> list[Play]:
    rows: list[Play] = []
    covered = 0.0
    for play in sorted((p for p in plays if p.track is not None), key=lambda p: p.start):
        start = max(play.start, covered)
        if start >= play.end:
            continue
        if start - covered >= 1.0:
            rows.append(Play(covered, start, None))
        rows.append(play.moved(start, play.end))
        covered = play.end
    if duration - covered >= 1.0:
        rows.append(Play(covered, duration, None))
    return rows


def save_submission_result(submission_id: int, rows: Sequence[Play], details: SetDetails) -> int:
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    assert submission is not None
    assert submission.status == SubmissionStatus.RUNNING
    title = details.title or Path(submission.upload_name or "upload").stem
    dj_set = DjSet(
        source=SetSource.UPLOAD,
        title=title,
        duration_seconds=round(details.duration_seconds),
        submitted_by_id=submission.user_id,
        is_published=True,
        is_private=True,
        published_at=utcnow(),
    )
    db.session.add(dj_set)
    for position, row in enumerate(rows):
        track = None
        if row.track is not None and row.track.library_file_id is not None:
            track = db.session.scalar(
                select(Track).where(Track.library_file_id == row.track.library_file_id)
            )
        dj_set.tracklist.append(
            SetTrack(
                position=position,
                track=track,
                start_seconds=row.start,
                end_seconds=row.end,
                confidence=row.confidence,
                speed=row.speed,
                found_by=row.found_by,
            )
        )
    db.session.flush()
    submission.status = SubmissionStatus.PUBLISHED
    submission.set_id = dj_set.id
    submission.progress = 100
    submission.finished_at = utcnow()
    db.session.commit()
    return dj_set.id
