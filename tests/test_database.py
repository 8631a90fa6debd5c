"""Column types and database settings every model relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, StatementError

from set2tracks.auth.models import ApiToken, Invite, User, UserPreferences
from set2tracks.database import escape_like
from set2tracks.extensions import db
from set2tracks.fingerprint.models import LibraryFile
from set2tracks.sets.models import BrowsingHistory, DjSet, SetTrack, Submission, SubmissionStatus
from set2tracks.tracks.models import RelatedTrack, Track
from tests.factories import (
    ApiTokenFactory,
    BrowsingHistoryFactory,
    DjSetFactory,
    InviteFactory,
    LibraryFileFactory,
    RelatedTrackFactory,
    SetTrackFactory,
    SubmissionFactory,
    TrackFactory,
    UserFactory,
)


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


def test_deleting_a_user_removes_personal_data_and_keeps_their_sets(app: Flask) -> None:
    user = UserFactory()
    token = ApiTokenFactory(user=user)
    history = BrowsingHistoryFactory(user=user)
    invite = InviteFactory(created_by=user)
    dj_set = DjSetFactory(submitted_by=user)
    submission = SubmissionFactory(user=user)
    ids = (token.id, history.set_id, invite.id, dj_set.id, submission.id)
    db.session.commit()

    db.session.execute(delete(User).where(User.id == user.id))
    db.session.commit()
    db.session.expire_all()

    token_id, history_set_id, invite_id, set_id, submission_id = ids
    assert db.session.get(ApiToken, token_id) is None
    assert db.session.get(UserPreferences, user.id) is None
    assert db.session.scalars(select(BrowsingHistory)).all() == []
    assert db.session.get(DjSet, history_set_id) is not None
    assert db.session.get(Invite, invite_id).created_by_id is None  # type: ignore[union-attr]
    assert db.session.get(DjSet, set_id).submitted_by_id is None  # type: ignore[union-attr]
    assert db.session.get(Submission, submission_id).user_id is None  # type: ignore[union-attr]


def test_removing_a_library_file_keeps_its_catalogue_track(app: Flask) -> None:
    library_file = LibraryFileFactory()
    track = TrackFactory(library_file=library_file, shazam_key=None)
    db.session.commit()

    db.session.execute(delete(LibraryFile).where(LibraryFile.id == library_file.id))
    db.session.commit()
    db.session.expire_all()

    assert db.session.get(Track, track.id).library_file_id is None  # type: ignore[union-attr]


def test_related_tracks_keep_their_order_and_go_with_their_track(app: Flask) -> None:
    track = TrackFactory()
    second, first = TrackFactory(title="Second"), TrackFactory(title="First")
    RelatedTrackFactory(track_id=track.id, related_track_id=second.id, position=1)
    RelatedTrackFactory(track_id=track.id, related_track_id=first.id, position=0)
    db.session.commit()
    db.session.expire_all()

    stored = db.session.get(Track, track.id)
    assert stored is not None
    assert [link.related_track.title for link in stored.related] == ["First", "Second"]

    db.session.execute(delete(Track).where(Track.id == track.id))
    db.session.commit()
    assert db.session.scalars(select(RelatedTrack)).all() == []
