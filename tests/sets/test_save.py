"""Saving a processed submission: one transaction, a private upload set, counters in SQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import StatementError

from set2tracks.errors import NotFound
from set2tracks.extensions import db
from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.pipeline.tracklist import build_tracklist
from set2tracks.sets.models import (
    Channel,
    DjSet,
    FoundBy,
    SetSource,
    SetTrack,
    Submission,
    SubmissionStatus,
)
from set2tracks.sets.services import (
    UNTITLED_UPLOAD,
    SetDetails,
    SubmissionNotRunning,
    save_submission_result,
)
from set2tracks.tracks.models import Track
from tests.factories import (
    ChannelFactory,
    DjSetFactory,
    LibraryFileFactory,
    SetTrackFactory,
    SubmissionFactory,
    TrackFactory,
    UserFactory,
)

ALPHA = TrackRef("Alpha", "Artist A", shazam_key="1001")
BRAVO = TrackRef("Bravo", "Artist B", shazam_key="1002")
CHARLIE = TrackRef("Charlie", "Artist C", isrc="GBAYE0800003")


def running_upload(**extra: Any) -> Submission:
    fields: dict[str, Any] = {
        "source": SetSource.UPLOAD,
        "video_id": None,
        "upload_path": "uploads/3f/3fa9.mp3",
        "upload_name": "Friday at home.mp3",
        "status": SubmissionStatus.RUNNING,
        "stage": "save",
        "progress": 90,
    }
    fields.update(extra)
    return SubmissionFactory(**fields)


def tracklist(set_id: int) -> list[tuple[int, float, float, str | None, FoundBy | None]]:
    rows = db.session.scalars(
        select(SetTrack).where(SetTrack.set_id == set_id).order_by(SetTrack.position)
    )
    return [
        (
            row.position,
            row.start_seconds,
            row.end_seconds,
            row.track.title if row.track else None,
            row.found_by,
        )
        for row in rows
    ]


def count(model: type[Any], *where: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_an_upload_becomes_a_published_private_set_with_its_tracklist(app: Flask) -> None:
    submission = running_upload()
    db.session.commit()
    plays = [
        Play(0.0, 181.5, ALPHA, FoundBy.LIBRARY, confidence=0.9, speed=1.02),
        Play(175.0, 400.0, BRAVO, FoundBy.SHAZAM, confidence=0.8, speed=1.0),
        Play(460.0, 600.0, CHARLIE, FoundBy.LIBRARY, confidence=0.7),
    ]
    rows = build_tracklist(plays, 600.4)

    set_id = save_submission_result(submission.id, rows, SetDetails(duration_seconds=600.4))
    db.session.expire_all()

    dj_set = db.session.get(DjSet, set_id)
    assert dj_set is not None
    assert (dj_set.source, dj_set.title, dj_set.duration_seconds) == (
        SetSource.UPLOAD,
        "Friday at home",
        600,
    )
    assert dj_set.submitted_by_id == submission.user_id
    assert (dj_set.is_published, dj_set.is_private, dj_set.is_hidden) == (True, True, False)
    assert dj_set.published_at is not None
    assert tracklist(set_id) == [
        (0, 0.0, 178.25, "Alpha", FoundBy.LIBRARY),
        (1, 178.25, 400.0, "Bravo", FoundBy.SHAZAM),
        (2, 400.0, 460.0, None, None),
        (3, 460.0, 600.4, "Charlie", FoundBy.LIBRARY),
    ]
    first = dj_set.tracklist[0]
    assert (first.confidence, first.speed) == (0.9, 1.02)
    assert dj_set.track_count == 3
    assert dj_set.coverage == pytest.approx((600.4 - 60) / 600)
    assert dj_set.public_track_count == 3
    stored = db.session.get(Submission, submission.id)
    assert stored is not None
    assert (stored.status, stored.set_id, stored.progress) == (
        SubmissionStatus.PUBLISHED,
        set_id,
        100,
    )
    assert stored.finished_at is not None
    # Private: no track counts a set that only its submitter can see.
    assert [track.set_count for track in db.session.scalars(select(Track))] == [0, 0, 0]


def test_row_times_are_stored_to_the_millisecond_and_still_touch(app: Flask) -> None:
    submission = running_upload()
    db.session.commit()
    # Cut at the middle of the overlap 1370.35..1665.68: 1518.0149999999999 in floats.
    plays = [
        Play(0.0, 1665.68, ALPHA, FoundBy.LIBRARY, confidence=1.0),
        Play(1370.35, 1919.635375, BRAVO, FoundBy.LIBRARY, confidence=1.0),
    ]

    set_id = save_submission_result(
        submission.id, build_tracklist(plays, 1919.635375), SetDetails(duration_seconds=1919.6)
    )
    db.session.expire_all()

    assert [(start, end) for _, start, end, _, _ in tracklist(set_id)] == [
        (0.0, 1518.015),
        (1518.015, 1919.635),
    ]


@pytest.mark.parametrize(
    ("given", "file_name", "expected"),
    [
        ("Live at the Lido", "lido.mp3", "Live at the Lido"),
        (None, "Sunday mix.final.flac", "Sunday mix.final"),
        (None, "C:\\Users\\dj\\Desktop\\warm up.wav", "warm up"),
        (None, "../../etc/closing set.m4a", "closing set"),
        (None, "no extension", "no extension"),
        ("   ", "  spaced   out  .ogg", "spaced out"),
        (None, ".mp3", ".mp3"),
        (None, "   .mp3", UNTITLED_UPLOAD),
        (None, None, UNTITLED_UPLOAD),
        ("x" * 600, "a.mp3", "x" * 500),
    ],
)
def test_an_uploads_title_is_given_or_its_file_name(
    app: Flask, given: str | None, file_name: str | None, expected: str
) -> None:
    submission = running_upload(upload_name=file_name)
    db.session.commit()

    set_id = save_submission_result(submission.id, [], SetDetails(60.0, title=given))

    dj_set = db.session.get(DjSet, set_id)
    assert dj_set is not None
    assert dj_set.title == expected
    assert tracklist(set_id) == []


@pytest.mark.parametrize(
    "status",
    [status for status in SubmissionStatus if status is not SubmissionStatus.RUNNING],
)
def test_a_submission_no_longer_running_is_not_saved(app: Flask, status: SubmissionStatus) -> None:
    submission = running_upload(status=status)
    db.session.commit()
    rows = [Play(0, 60, ALPHA, FoundBy.SHAZAM)]

    with pytest.raises(SubmissionNotRunning, match=str(status)):
        save_submission_result(submission.id, rows, SetDetails(60.0))

    db.session.expire_all()
    assert count(DjSet) == 0
    assert count(Track) == 0
    stored = db.session.get(Submission, submission.id)
    assert stored is not None
    assert (stored.status, stored.set_id) == (status, None)


def test_an_unknown_submission_is_not_found(app: Flask) -> None:
    with pytest.raises(NotFound):
        save_submission_result(424242, [], SetDetails(60.0))


@pytest.mark.parametrize(
    ("rows", "duration"),
    [
        ([Play(-1, 10, ALPHA)], 60.0),
        ([Play(20, 10, ALPHA)], 60.0),
        ([Play(0, float("nan"), ALPHA)], 60.0),
        ([], float("inf")),
        ([], -5.0),
    ],
)
def test_rows_no_tracklist_can_hold_are_refused_before_anything_is_written(
    app: Flask, rows: list[Play], duration: float
) -> None:
    submission = running_upload()
    db.session.commit()

    with pytest.raises(ValueError, match=r"row|seconds"):
        save_submission_result(submission.id, rows, SetDetails(duration))

    assert count(DjSet) == 0
    assert count(Track) == 0


def test_known_tracks_are_reused_and_rows_naming_one_track_become_one(app: Flask) -> None:
    known = TrackFactory(title="Alpha (Original Mix)", shazam_key="1001", isrc="GBAYE0800001")
    submission = running_upload()
    db.session.commit()
    gone = LibraryFileFactory()
    db.session.flush()
    gone_id = gone.id
    db.session.delete(gone)
    db.session.commit()
    rows = [
        Play(0, 50, None),
        Play(50, 100, TrackRef("promo_v3", library_file_id=gone_id)),  # removed meanwhile
        Play(100, 150, None),
        Play(150, 200, ALPHA, FoundBy.SHAZAM, confidence=None, speed=1.0),
        # Another recognizer's ref of the same recording, by its ISRC.
        Play(200, 300, TrackRef("Alpha", isrc="GBAYE0800001"), FoundBy.LIBRARY, 0.9, 1.06),
    ]

    set_id = save_submission_result(submission.id, rows, SetDetails(300.0))

    assert tracklist(set_id) == [
        (0, 0, 150, None, None),
        (1, 150, 300, "Alpha (Original Mix)", FoundBy.LIBRARY),
    ]
    merged = db.session.scalars(select(SetTrack).where(SetTrack.position == 1)).one()
    assert merged.track_id == known.id
    assert (merged.confidence, merged.speed) == (0.9, pytest.approx((50 * 1.0 + 100 * 1.06) / 150))
    assert count(Track) == 1


def counters(dj_set_id: int, channel_id: int, track_ids: list[int]) -> dict[str, Any]:
    """Every counter a processing touches, as stored."""
    db.session.expire_all()
    dj_set = db.session.get(DjSet, dj_set_id)
    channel = db.session.get(Channel, channel_id)
    assert dj_set is not None
    assert channel is not None
    return {
        "set": (dj_set.track_count, round(dj_set.coverage, 6)),
        "public": (dj_set.public_track_count, round(dj_set.public_coverage, 6)),
        "channel": channel.set_count,
        "tracks": [db.session.get(Track, track_id).set_count for track_id in track_ids],  # type: ignore[union-attr]
    }


@pytest.fixture
def published_set() -> tuple[Submission, DjSet, Channel]:
    """A public set on a channel that another public set shares, and its running submission."""
    channel = ChannelFactory()
    owner = UserFactory()
    dj_set = DjSetFactory(channel=channel, submitted_by=owner, duration_seconds=300)
    other = DjSetFactory(channel=channel)
    SetTrackFactory(dj_set=other, track=TrackFactory(title="Bravo", shazam_key="1002"))
    submission = SubmissionFactory(
        user=owner, video_id=dj_set.video_id, dj_set=dj_set, status=SubmissionStatus.RUNNING
    )
    db.session.commit()
    return submission, dj_set, channel


def restart(submission: Submission) -> None:
    db.session.execute(
        update(Submission)
        .where(Submission.id == submission.id)
        .values(status=SubmissionStatus.RUNNING)
    )
    db.session.commit()


def test_reprocessing_replaces_the_tracklist_and_counts_as_a_first_processing(
    app: Flask, published_set: tuple[Submission, DjSet, Channel]
) -> None:
    submission, dj_set, channel = published_set
    first = [
        Play(0, 100, ALPHA, FoundBy.SHAZAM),
        Play(100, 200, BRAVO, FoundBy.SHAZAM),
        Play(200, 300, None),
    ]
    second = [Play(0, 150, BRAVO, FoundBy.SHAZAM), Play(150, 300, CHARLIE, FoundBy.LIBRARY)]

    assert save_submission_result(submission.id, first, SetDetails(300.0)) == dj_set.id
    ids = [
        db.session.scalars(select(Track.id).where(Track.title == title)).one()
        for title in ("Alpha", "Bravo")
    ]
    after_first = counters(dj_set.id, channel.id, ids)
    restart(submission)
    assert save_submission_result(submission.id, second, SetDetails(300.0)) == dj_set.id
    ids.append(db.session.scalars(select(Track.id).where(Track.title == "Charlie")).one())
    after_second = counters(dj_set.id, channel.id, ids)
    restart(submission)
    save_submission_result(submission.id, second, SetDetails(300.0))
    after_third = counters(dj_set.id, channel.id, ids)

    assert after_first == {
        "set": (2, round(200 / 300, 6)),
        "public": (2, round(200 / 300, 6)),
        "channel": 2,
        "tracks": [1, 2],  # Bravo also plays in the channel's other set
    }
    assert tracklist(dj_set.id) == [
        (0, 0, 150, "Bravo", FoundBy.SHAZAM),
        (1, 150, 300, "Charlie", FoundBy.LIBRARY),
    ]
    # Alpha left the set: it counts no set, as if the first processing had never been.
    assert after_second == {"set": (2, 1.0), "public": (2, 1.0), "channel": 2, "tracks": [0, 2, 1]}
    assert after_third == after_second
    assert count(Track) == 3
    assert count(DjSet) == 2


def test_reprocessing_keeps_the_sets_title_audience_and_publication(
    app: Flask,
) -> None:
    submission = running_upload()
    db.session.commit()
    set_id = save_submission_result(submission.id, [], SetDetails(300.0, title="Warm-up"))
    # The owner publishes it; then it is processed again.
    db.session.execute(update(DjSet).where(DjSet.id == set_id).values(is_private=False))
    published_at = db.session.get(DjSet, set_id).published_at  # type: ignore[union-attr]
    restart(submission)

    again = save_submission_result(submission.id, [], SetDetails(301.0, title="other"))

    db.session.expire_all()
    dj_set = db.session.get(DjSet, set_id)
    assert dj_set is not None
    assert again == set_id
    assert (dj_set.title, dj_set.is_private, dj_set.published_at) == (
        "Warm-up",
        False,
        published_at,
    )
    assert dj_set.duration_seconds == 301


def test_a_save_that_fails_halfway_leaves_the_former_tracklist_whole(
    app: Flask, published_set: tuple[Submission, DjSet, Channel]
) -> None:
    submission, dj_set, channel = published_set
    save_submission_result(submission.id, [Play(0, 300, ALPHA, FoundBy.SHAZAM)], SetDetails(300))
    alpha = db.session.scalars(select(Track.id).where(Track.title == "Alpha")).one()
    before = counters(dj_set.id, channel.id, [alpha])
    restart(submission)
    broken = [Play(0, 100, BRAVO, FoundBy.SHAZAM), Play(100, 300, CHARLIE, "bogus")]  # type: ignore[arg-type]

    with pytest.raises(StatementError):
        save_submission_result(submission.id, broken, SetDetails(300))

    assert tracklist(dj_set.id) == [(0, 0, 300, "Alpha", FoundBy.SHAZAM)]
    assert counters(dj_set.id, channel.id, [alpha]) == before
    assert count(Track, Track.title == "Charlie") == 0
    assert db.session.get(Submission, submission.id).status is SubmissionStatus.RUNNING  # type: ignore[union-attr]


# What another process does meanwhile (PostgreSQL: real concurrent transactions).


@pytest.mark.postgres
@pytest.mark.committing
def test_a_cancel_committed_while_the_job_ran_is_respected(app: Flask) -> None:
    with app.app_context():
        submission = running_upload()
        db.session.commit()
        submission_id = submission.id
        # The job's session read the submission as running at an earlier stage.
        assert db.session.get(Submission, submission_id) is not None
        with db.engine.begin() as other:
            other.execute(
                text("UPDATE submissions SET status = 'cancelled' WHERE id = :id"),
                {"id": submission_id},
            )

        with pytest.raises(SubmissionNotRunning, match="cancelled"):
            save_submission_result(submission_id, [Play(0, 60, ALPHA)], SetDetails(60))

        assert count(DjSet) == 0
        assert db.session.get(Submission, submission_id).status is SubmissionStatus.CANCELLED  # type: ignore[union-attr]


@pytest.mark.postgres
@pytest.mark.committing
def test_a_save_waits_for_a_cancel_in_progress_then_refuses(app: Flask) -> None:
    with app.app_context():
        submission = running_upload()
        db.session.commit()
        submission_id = submission.id
        outcome: dict[str, BaseException | int] = {}

        def job() -> None:
            with app.app_context():
                try:
                    outcome["result"] = save_submission_result(
                        submission_id, [Play(0, 60, ALPHA)], SetDetails(60)
                    )
                except BaseException as error:
                    outcome["result"] = error
                finally:
                    db.session.remove()

        with db.engine.connect() as admin, db.engine.connect() as other:
            cancelling = other.begin()
            other.execute(
                text("UPDATE submissions SET status = 'cancelled' WHERE id = :id"),
                {"id": submission_id},
            )
            worker = threading.Thread(target=job)
            worker.start()
            wait_for_a_lock_wait(admin)
            cancelling.commit()
            worker.join(timeout=60)

        # Without the row lock the save would have read "running" and published over the cancel.
        assert isinstance(outcome["result"], SubmissionNotRunning)
        db.session.expire_all()
        assert count(DjSet) == 0
        assert db.session.get(Submission, submission_id).status is SubmissionStatus.CANCELLED  # type: ignore[union-attr]


def wait_for_a_lock_wait(connection: Any) -> None:
    """Return once some session of this database waits for a row lock."""
    deadline = time.monotonic() + 30
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        if connection.execute(query).scalar():
            connection.rollback()
            return
        connection.rollback()  # a fresh snapshot of pg_stat_activity next time
        time.sleep(0.02)
    raise AssertionError("the save never waited for the submission's row lock")
