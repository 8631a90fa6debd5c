"""Column types and database settings every model relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from set2tracks.database import escape_like
from set2tracks.extensions import db
from set2tracks.sets.models import DjSet, SetTrack, Submission, SubmissionStatus
from tests.factories import DjSetFactory, SetTrackFactory, SubmissionFactory, UserFactory


def test_timestamps_come_back_timezone_aware_in_utc(app: Flask) -> None:
    paris = timezone(timedelta(hours=1))
    dj_set = DjSetFactory(youtube_published_at=datetime(2026, 6, 21, 23, 30, tzinfo=paris))
    db.session.commit()
    db.session.expire_all()

    stored = db.session.get(DjSet, dj_set.id)

    assert stored is not None
    assert stored.youtube_published_at == datetime(2026, 6, 21, 22, 30, tzinfo=UTC)
    assert stored.youtube_published_at.tzinfo is UTC
    assert stored.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(app: Flask) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        DjSetFactory(youtube_published_at=datetime(2026, 6, 21, 23, 30))  # noqa: DTZ001


def test_foreign_keys_are_enforced(app: Flask) -> None:
    db.session.add(SetTrack(set_id=999_999, position=0, start_seconds=0, end_seconds=1))

    with pytest.raises(IntegrityError):
        db.session.flush()


def test_deleting_a_set_deletes_its_tracklist_but_keeps_the_tracks(app: Flask) -> None:
    row = SetTrackFactory()
    track_id = row.track_id
    db.session.delete(row.dj_set)
    db.session.commit()

    assert db.session.scalar(select(SetTrack).where(SetTrack.id == row.id)) is None
    assert db.session.get(type(row.track), track_id) is not None


def test_one_active_submission_per_video(app: Flask) -> None:
    SubmissionFactory(video_id="dQw4w9WgXcQ")

    with pytest.raises(IntegrityError):
        SubmissionFactory(video_id="dQw4w9WgXcQ")


def test_finished_submissions_do_not_block_a_new_one(app: Flask) -> None:
    user = UserFactory()
    for status in (SubmissionStatus.PUBLISHED, SubmissionStatus.FAILED, SubmissionStatus.DISCARDED):
        SubmissionFactory(video_id="dQw4w9WgXcQ", status=status, user=user)
    SubmissionFactory(video_id="dQw4w9WgXcQ", user=user)
    db.session.flush()

    count = db.session.scalar(
        select(db.func.count()).select_from(Submission).where(Submission.video_id == "dQw4w9WgXcQ")
    )
    assert count == 4


def test_email_is_unique_whatever_its_case(app: Flask) -> None:
    UserFactory(email="Ada@Example.com")

    with pytest.raises(IntegrityError):
        UserFactory(email="ada@example.com")


def test_a_youtube_set_needs_its_video_id(app: Flask) -> None:
    with pytest.raises(IntegrityError):
        DjSetFactory(video_id=None)


def test_tracklist_rows_cannot_end_before_they_start(app: Flask) -> None:
    with pytest.raises(IntegrityError):
        SetTrackFactory(start_seconds=100, end_seconds=50)


def test_escape_like_makes_wildcards_literal() -> None:
    assert escape_like("100%_off\\") == "100\\%\\_off\\\\"
