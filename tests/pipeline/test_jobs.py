"""The processing job in-process (the embedded profile's runner): every way an attempt ends."""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from set2tracks import queues
from set2tracks.clients.mail import MemoryMailer, mailer
from set2tracks.database import utcnow
from set2tracks.extensions import db
from set2tracks.fingerprint.audio import AudioError, ffmpeg_path
from set2tracks.pipeline import jobs, maintenance, stages
from set2tracks.pipeline.plays import Play
from set2tracks.queues import inline_runner
from set2tracks.sets.models import DjSet, FoundBy, SetSource, Submission, SubmissionStatus
from set2tracks.sets.submissions import retry_submission
from tests.factories import SubmissionFactory, UserFactory
from tests.pipeline.conftest import (
    Music,
    Places,
    attempts,
    ffmpeg,
    index_library,
    reload,
    upload,
)
from tests.sets.submitting import API, bearer, post_file

pytestmark = pytest.mark.usefixtures("no_leftovers")

EXPECTED = [("Alpha", 0.0), (None, 26.0), ("Beta", 56.0), ("Gamma", 84.0)]


def run_jobs() -> None:
    assert inline_runner().join(timeout=120)


def outbox() -> list[str]:
    sent = mailer()
    assert isinstance(sent, MemoryMailer)
    return [email.subject for email in sent.outbox]


@pytest.fixture(autouse=True)
def _empty_outbox() -> None:
    sent = mailer()
    assert isinstance(sent, MemoryMailer)
    sent.outbox.clear()


def tracklist(set_id: int) -> list[tuple[str | None, float]]:
    dj_set = db.session.get(DjSet, set_id)
    assert dj_set is not None
    return [(row.track.title if row.track else None, row.start_seconds) for row in dj_set.tracklist]


def assert_expected_tracklist(rows: Sequence[tuple[str | None, float]]) -> None:
    assert [title for title, _ in rows] == [title for title, _ in EXPECTED]
    for (title, start), (_, expected) in zip(rows, EXPECTED, strict=True):
        assert start == pytest.approx(expected, abs=4.0), title


def test_an_upload_becomes_a_published_private_set(
    app: Flask, client: FlaskClient, music: Music, places: Places
) -> None:
    index_library(music)
    owner = UserFactory()
    mine = bearer(owner)

    posted = post_file(client, music.mix, name="Friday night.mp3", headers=mine, notify="true")
    assert posted.status_code == 202, posted.json
    assert posted.json is not None
    submission_id = posted.json["id"]
    run_jobs()

    done = reload(submission_id)
    assert done.status == SubmissionStatus.PUBLISHED
    assert (done.stage, done.progress, done.attempts) == ("notify", 100, 1)
    assert done.set_id is not None
    dj_set = db.session.get(DjSet, done.set_id)
    assert dj_set is not None
    assert (dj_set.source, dj_set.is_private, dj_set.is_published) == (SetSource.UPLOAD, True, True)
    assert dj_set.submitted_by_id == owner.id
    assert dj_set.title == "Friday night"
    assert_expected_tracklist(tracklist(dj_set.id))
    assert {row.found_by for row in dj_set.tracklist if row.track} == {FoundBy.LIBRARY}
    (attempt,) = attempts(submission_id)
    assert (attempt.number, attempt.job_id, attempt.outcome, attempt.stage) == (
        1,
        done.job_id,
        "published",
        "save",
    )
    assert attempt.finished_at is not None
    assert attempt.reason is not None
    assert "fetch skipped" in attempt.reason
    assert "enrich skipped" in attempt.reason
    # Published: the upload is not needed any more.
    assert list(places.uploads.iterdir()) == []
    assert outbox() == ["Your set's tracklist is ready"]
    status = client.get(f"{API}/{submission_id}", headers=mine).json
    assert status is not None
    assert (status["status"], status["set_id"]) == ("published", dj_set.id)


def test_the_pipeline_and_flask_identify_hear_the_same_plays(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_library(music)
    heard: list[list[Play]] = []
    build = stages.build_tracklist

    def keep(plays: Sequence[Play], duration: float) -> list[Play]:
        heard.append(list(plays))
        return build(plays, duration)

    monkeypatch.setattr(stages, "build_tracklist", keep)
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)
    run_jobs()

    from set2tracks.fingerprint import library

    identified = library.identify(music.mix, library.MIN_CONFIDENCE)
    assert heard == [identified.plays]


def test_a_transient_error_is_retried_until_the_attempts_run_out(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RETRY_BASE_SECONDS", 0)
    index_library(music)

    def broken(plays: Sequence[Play], duration: float) -> list[Play]:
        raise ConnectionError("the catalogue went away")

    monkeypatch.setattr(stages, "build_tracklist", broken)
    submission = upload(places, music.mix, notify_by_email=True)
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.FAILED
    assert done.attempts == 4
    assert done.reason == (
        "processing failed 4 times (last at tracklist); an admin can try it again"
    )
    assert "ConnectionError: the catalogue went away" in (done.error or "")
    assert done.set_id is None
    tried = attempts(submission.id)
    assert [a.outcome for a in tried] == ["retrying", "retrying", "retrying", "failed"]
    assert [a.stage for a in tried] == ["tracklist"] * 4
    assert all("the catalogue went away" in (a.error or "") for a in tried)
    assert all(a.finished_at is not None for a in tried)
    # Failed: kept for an admin's retry.
    assert Path(done.upload_path or "").is_file()
    assert outbox() == ["Your set could not be processed"]


def test_an_admins_retry_of_a_failed_submission_is_one_more_run(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RETRY_BASE_SECONDS", 0)
    index_library(music)

    def broken(plays: Sequence[Play], duration: float) -> list[Play]:
        raise ConnectionError("the catalogue went away")

    monkeypatch.setattr(stages, "build_tracklist", broken)
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)
    run_jobs()
    assert reload(submission.id).status == SubmissionStatus.FAILED

    retry_submission(submission.id)
    run_jobs()

    done = reload(submission.id)
    assert (done.status, done.attempts) == (SubmissionStatus.FAILED, 5)
    assert done.reason == "processing failed 5 times (last at tracklist); an admin can try it again"
    assert [a.outcome for a in attempts(submission.id)] == ["retrying"] * 3 + ["failed"] * 2


def test_a_transient_error_then_success_publishes(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RETRY_BASE_SECONDS", 0)
    index_library(music)
    build = stages.build_tracklist
    calls: list[int] = []

    def flaky(plays: Sequence[Play], duration: float) -> list[Play]:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("slow disk")
        return build(plays, duration)

    monkeypatch.setattr(stages, "build_tracklist", flaky)
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.PUBLISHED
    assert done.reason is None
    assert [(a.number, a.outcome) for a in attempts(submission.id)] == [
        (1, "retrying"),
        (2, "published"),
    ]
    assert_expected_tracklist(tracklist(done.set_id or 0))


def test_retries_wait_longer_each_time() -> None:
    assert stages.retry_delays(0, 4, 30) == [30, 120, 480]
    assert stages.retry_delays(2, 4, 30) == [480]
    assert stages.retry_delays(4, 4, 30) == []


def test_a_file_that_is_not_audio_is_discarded_at_once(
    app: Flask, places: Places, tmp_path: Path
) -> None:
    fake = tmp_path / "set.mp3"
    fake.write_text("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n")
    submission = upload(places, fake, notify_by_email=True)
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.DISCARDED
    assert done.reason is not None
    assert done.reason.startswith("the file is not audio we can read")
    assert str(places.uploads) not in done.reason  # ffprobe's words stay with the admins
    assert done.error is not None
    assert done.error.startswith("probe: ")
    assert [(a.outcome, a.stage) for a in attempts(submission.id)] == [("discarded", "vet")]
    assert not Path(done.upload_path or "").exists()
    assert outbox() == ["Your set could not be processed"]


def test_a_recording_shorter_than_allowed_is_discarded(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "UPLOAD_MIN_SECONDS", 600)
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.DISCARDED
    assert done.reason is not None
    assert re.fullmatch(
        r"the recording is too short \(1:5\d\); sets of at least 10:00 are accepted", done.reason
    )


def test_a_header_that_understates_the_length_cannot_make_the_job_decode_more(
    app: Flask, music: Music, places: Places, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two Ogg streams one after the other (a "chained" Ogg file): its headers tell about a
    # minute, decoding it gives both streams, well over two minutes.
    for name, seconds in (("long", []), ("short", ["-t", "40"])):
        ffmpeg("-i", music.mix, *seconds, "-c:a", "libvorbis", tmp_path / f"{name}.ogg")
    chained = tmp_path / "chained.ogg"
    chained.write_bytes(
        (tmp_path / "long.ogg").read_bytes() + (tmp_path / "short.ogg").read_bytes()
    )
    monkeypatch.setitem(app.config, "SET_MAX_SECONDS", 100)
    submission = upload(places, chained)
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.DISCARDED
    assert done.reason is not None
    assert done.reason.startswith("the recording decodes to more than 1:40 of audio")
    assert done.reason.endswith("; longer sets are not accepted")
    assert [a.stage for a in attempts(submission.id)] == ["decode"]


def test_nothing_recognised_fails_with_the_reason_and_keeps_the_upload(
    app: Flask, music: Music, places: Places
) -> None:
    submission = upload(places, music.mix)  # and no library indexed
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.FAILED
    assert done.reason is not None
    assert done.reason.startswith(
        "no track could be recognised (the library recognizer could not run: the library is empty"
    )
    assert done.reason.endswith("an admin can try it again")
    assert Path(done.upload_path or "").is_file()
    assert [a.stage for a in attempts(submission.id)] == ["recognize"]


def test_an_upload_failed_because_the_library_is_empty_can_be_retried_once_indexed(
    app: Flask, music: Music, places: Places
) -> None:
    # The operator has not indexed the library yet: nothing the submitter did wrong.
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)
    run_jobs()
    assert reload(submission.id).status == SubmissionStatus.FAILED

    index_library(music)
    assert Path(reload(submission.id).upload_path or "").is_file()
    retry_submission(submission.id)
    run_jobs()
    assert reload(submission.id).status == SubmissionStatus.PUBLISHED


def test_a_submission_cancelled_meanwhile_stops_at_the_next_stage(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_library(music)
    build = stages.build_tracklist
    submission = upload(places, music.mix)

    def cancel_then_build(plays: Sequence[Play], duration: float) -> list[Play]:
        # What the admin queue's cancel button does while the job runs.
        db.session.execute(
            update(Submission)
            .where(Submission.id == submission.id)
            .values(status=SubmissionStatus.CANCELLED, reason="cancelled by an admin")
        )
        db.session.commit()
        return build(plays, duration)

    monkeypatch.setattr(stages, "build_tracklist", cancel_then_build)
    jobs.enqueue_submission(submission.id)

    run_jobs()

    done = reload(submission.id)
    assert (done.status, done.reason, done.set_id) == (
        SubmissionStatus.CANCELLED,
        "cancelled by an admin",
        None,
    )
    assert db.session.query(DjSet).count() == 0
    assert [(a.outcome, a.stage) for a in attempts(submission.id)] == [("cancelled", "tracklist")]
    assert Path(done.upload_path or "").is_file()  # an admin may queue it again


def test_a_job_that_is_not_the_submissions_does_nothing(
    app: Flask, music: Music, places: Places, caplog: pytest.LogCaptureFixture
) -> None:
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)
    # Queued again: the first job is no longer the submission's.
    jobs.enqueue_submission(submission.id)

    with caplog.at_level(logging.INFO, logger="set2tracks.pipeline.stages"):
        run_jobs()

    assert len(attempts(submission.id)) == 1
    assert any("not to job" in message for message in caplog.messages)


@pytest.mark.parametrize(
    "status", [SubmissionStatus.PUBLISHED, SubmissionStatus.CANCELLED, SubmissionStatus.FAILED]
)
def test_a_submission_that_is_not_queued_is_left_alone(
    app: Flask, music: Music, places: Places, status: SubmissionStatus
) -> None:
    submission = upload(places, music.mix)
    jobs.enqueue_submission(submission.id)
    db.session.execute(
        update(Submission).where(Submission.id == submission.id).values(status=status)
    )
    db.session.commit()

    run_jobs()

    assert reload(submission.id).status == status
    assert attempts(submission.id) == []


def test_a_youtube_submission_stays_queued_until_its_source_exists(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    submission = SubmissionFactory(source=SetSource.YOUTUBE, job_id="youtube-job")
    db.session.commit()

    queues.enqueue(jobs.PROCESS_SUBMISSION, submission.id, job_id="youtube-job")
    with caplog.at_level(logging.INFO, logger="set2tracks.pipeline.stages"):
        run_jobs()

    done = reload(submission.id)
    assert (done.status, done.attempts, done.stage) == (SubmissionStatus.QUEUED, 0, None)
    assert any("arrives with the next issue" in message for message in caplog.messages)


def test_running_outside_a_job_does_nothing(app: Flask, music: Music, places: Places) -> None:
    submission = upload(places, music.mix, job_id="some-job", started_at=utcnow())

    jobs.process_submission(submission.id)

    assert reload(submission.id).status == SubmissionStatus.QUEUED


def test_a_crash_while_queueing_the_email_does_not_lose_it(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RETRY_BASE_SECONDS", 0)
    index_library(music)
    submission = upload(places, music.mix, notify_by_email=True)
    enqueue = queues.enqueue
    failures: list[str] = []

    def redis_blip(path: str, *args: Any, **kwargs: Any) -> str:
        # The worker loses Redis (or is killed) right after the set is published.
        if path == jobs.SEND_SUBMISSION_EMAIL and not failures:
            failures.append(path)
            raise redis.ConnectionError("Connection reset by peer")
        return enqueue(path, *args, **kwargs)

    monkeypatch.setattr(queues, "enqueue", redis_blip)
    jobs.enqueue_submission(submission.id)
    run_jobs()
    assert reload(submission.id).stage == "save"  # the email is still owed
    # Everything that runs later: the job's retries, the periodic maintenance (twice).
    swept = maintenance.sweep(maintenance.never_alive, stale_after=timedelta(0))
    run_jobs()
    maintenance.sweep(maintenance.never_alive, stale_after=timedelta(0))
    run_jobs()

    assert failures
    assert swept.emailed == [submission.id]
    done = reload(submission.id)
    assert done.status == SubmissionStatus.PUBLISHED
    assert done.stage == "notify"
    assert outbox() == ["Your set's tracklist is ready"]  # promised on the submit page, once


def test_the_sweep_does_not_email_twice_after_the_normal_path(
    app: Flask, music: Music, places: Places
) -> None:
    index_library(music)
    submission = upload(places, music.mix, notify_by_email=True)
    jobs.enqueue_submission(submission.id)
    run_jobs()

    swept = maintenance.sweep(maintenance.never_alive, stale_after=timedelta(0))
    run_jobs()

    assert swept.emailed == []
    assert reload(submission.id).stage == "notify"
    assert outbox() == ["Your set's tracklist is ready"]


def test_ffmpegs_own_words_never_reach_the_submitter(
    app: Flask, music: Music, places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission = upload(places, music.mix, notify_by_email=True)
    # What real ffmpeg says of a file it cannot read: the server's path comes first.
    broken = places.uploads / "gone.flac"
    said = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-v", "error", "-i", str(broken), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr.strip()
    assert str(places.uploads) in said
    decode = stages.decode_to_file

    def fails_midway(*args: Any, **kwargs: Any) -> Any:
        decode(*args, **kwargs)
        raise AudioError(said)  # the decode of a file damaged past its headers

    monkeypatch.setattr(stages, "decode_to_file", fails_midway)
    jobs.enqueue_submission(submission.id)
    run_jobs()

    done = reload(submission.id)
    assert done.status == SubmissionStatus.DISCARDED
    assert done.reason == "the audio could not be decoded: the file may be damaged or cut short"
    assert done.error == f"decode: {said}"  # for the admins
    sent = mailer()
    assert isinstance(sent, MemoryMailer)
    (email,) = sent.outbox
    assert done.reason in email.text
    assert str(places.uploads) not in email.text
