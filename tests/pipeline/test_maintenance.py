"""The sweep of abandoned submissions, WORK_DIR's leftovers, the periodic run and their commands."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import update

from set2tracks import create_app, queues
from set2tracks.clients.mail import MemoryMailer, mailer
from set2tracks.database import utcnow
from set2tracks.extensions import db
from set2tracks.pipeline import jobs, maintenance, stages
from set2tracks.pipeline.plays import Play
from set2tracks.queues import GuardedJob, inline_runner
from set2tracks.sets.models import SetSource, Submission, SubmissionAttempt, SubmissionStatus
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import SubmissionFactory
from tests.pipeline.conftest import Music, Places, attempts, index_library, reload, upload


def abandoned(places: Places, music: Music, *, runs: int = 1, minutes: int = 10) -> Submission:
    """An upload left running ``minutes`` ago by a worker that died in its ``runs``-th attempt."""
    started = utcnow() - timedelta(minutes=minutes)
    submission = upload(
        places,
        music.mix,
        status=SubmissionStatus.RUNNING,
        job_id="dead-job",
        attempts=runs,
        stage="recognize",
        heartbeat_at=started,
        started_at=started,
    )
    for number in range(1, runs + 1):
        db.session.add(
            SubmissionAttempt(
                submission_id=submission.id,
                number=number,
                job_id="dead-job",
                outcome="retrying" if number < runs else "running",
                stage="recognize",
                started_at=started,
            )
        )
    db.session.commit()
    return submission


def dead(job_id: str | None) -> bool:
    return False


def alive(job_id: str | None) -> bool:
    return True


def test_an_abandoned_submission_is_queued_again_and_then_published(
    app: Flask, music: Music, places: Places
) -> None:
    index_library(music)
    submission = abandoned(places, music)

    swept = maintenance.sweep(dead)

    assert (swept.requeued, swept.failed) == ([submission.id], [])
    queued = reload(submission.id)
    assert queued.status == SubmissionStatus.QUEUED
    assert queued.job_id not in (None, "dead-job")
    assert queued.reason == "the worker processing it stopped at recognize: it is queued again"
    assert inline_runner().join(timeout=120)
    done = reload(submission.id)
    assert done.status == SubmissionStatus.PUBLISHED
    assert [(a.number, a.outcome) for a in attempts(submission.id)] == [
        (1, "abandoned"),
        (2, "published"),
    ]
    assert attempts(submission.id)[0].reason == "the worker running it stopped at recognize"


def test_an_abandoned_submission_with_no_attempt_left_fails(
    app: Flask, music: Music, places: Places
) -> None:
    submission = abandoned(places, music, runs=4)
    submission.notify_by_email = True
    db.session.commit()
    sent = mailer()
    assert isinstance(sent, MemoryMailer)
    sent.outbox.clear()

    swept = maintenance.sweep(dead)

    assert (swept.requeued, swept.failed) == ([], [submission.id])
    done = reload(submission.id)
    assert done.status == SubmissionStatus.FAILED
    assert done.reason == (
        "the worker processing it stopped at recognize, and it has run 4 times;"
        " an admin can try it again"
    )
    assert [a.outcome for a in attempts(submission.id)] == ["retrying"] * 3 + ["failed"]
    assert inline_runner().join(timeout=30)
    assert [email.subject for email in sent.outbox] == ["Your set could not be processed"]
    assert Path(done.upload_path or "").is_file()  # kept for an admin's retry


@pytest.mark.parametrize(
    ("minutes", "job_alive"), [(1, dead), (10, alive)], ids=["fresh heartbeat", "job alive"]
)
def test_a_submission_still_worked_on_is_left_alone(
    app: Flask, music: Music, places: Places, minutes: int, job_alive: maintenance.JobAlive
) -> None:
    submission = abandoned(places, music, minutes=minutes)

    swept = maintenance.sweep(job_alive)

    assert (swept.requeued, swept.failed) == ([], [])
    assert reload(submission.id).status == SubmissionStatus.RUNNING
    assert reload(submission.id).job_id == "dead-job"


def test_a_queued_upload_whose_job_was_lost_is_queued_again(
    app: Flask, music: Music, places: Places
) -> None:
    old = utcnow() - timedelta(hours=1)
    lost = upload(places, music.mix, job_id="lost-job")
    youtube = SubmissionFactory(source=SetSource.YOUTUBE, job_id=None)
    fresh = upload(places, music.mix, job_id="just-queued")
    db.session.execute(
        update(Submission).where(Submission.id.in_([lost.id, youtube.id])).values(updated_at=old)
    )
    db.session.commit()

    swept = maintenance.sweep(dead)

    assert swept.requeued == [lost.id]
    assert reload(lost.id).job_id != "lost-job"
    assert reload(youtube.id).job_id is None  # YouTube links wait for the next issue
    assert reload(fresh.id).job_id == "just-queued"  # its enqueue may be on its way


def test_the_embedded_profile_recovers_what_the_last_process_left_at_start(
    app: Flask, music: Music, places: Places
) -> None:
    index_library(music)
    # Died a second ago, with the web process that ran it: no need to wait in this profile.
    submission = abandoned(places, music, minutes=0)
    queued = upload(places, music.mix, job_id="lost-with-the-process")
    ticking = maintenance.start_embedded(app, every=0.05)
    time.sleep(0.2)
    ticking.set()

    for one in (submission, queued):
        assert reload(one.id).status == SubmissionStatus.QUEUED
    assert inline_runner().join(timeout=120)
    assert reload(submission.id).status == SubmissionStatus.PUBLISHED
    assert reload(queued.id).status == SubmissionStatus.PUBLISHED


def make_old(path: Path, days: float) -> Path:
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))
    return path


def leftovers(work: Path) -> tuple[Path, Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    old = work / "submission-1-1-0123456789ab"
    old.mkdir()
    (old / "audio.f32").write_bytes(b"\0" * 64)
    make_old(old, 2)
    stray = work / "stray.tmp"
    stray.touch()
    make_old(stray, 3)
    fresh = work / "submission-2-1-ba9876543210"
    fresh.mkdir()
    return old, stray, fresh


def test_leftovers_older_than_a_day_are_deleted(app: Flask, places: Places) -> None:
    old, stray, fresh = leftovers(places.work)

    removed = maintenance.clean_work_dir()

    assert sorted(removed) == sorted([old.name, stray.name])
    assert list(places.work.iterdir()) == [fresh]


def test_the_commands_clean_and_sweep(app: Flask, places: Places) -> None:
    *_, fresh = leftovers(places.work)
    runner = app.test_cli_runner()

    cleaned = runner.invoke(args=["submissions", "clean-work-dir"])
    swept = runner.invoke(args=["submissions", "sweep"])

    assert cleaned.exit_code == 0, cleaned.output
    assert cleaned.output.splitlines()[0] == f"deleted 2 leftover(s) from {places.work}"
    assert list(places.work.iterdir()) == [fresh]
    # In-process jobs belong to the web process: only it may sweep them (when it starts).
    assert swept.exit_code == 1
    assert "restart `make run` instead" in swept.output


@pytest.mark.redis
def test_the_sweep_command_asks_rq_which_jobs_are_gone(
    backends: Backends, tmp_path: Path, redis_url: str, music: Music, places: Places
) -> None:
    rq_app = create_app(
        base_config(
            backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq", UPLOAD_DIR=str(places.uploads)
        )
    )
    with rq_app.app_context():
        submission = abandoned(places, music)
        result = rq_app.test_cli_runner().invoke(args=["submissions", "sweep"])

        assert result.exit_code == 0, result.output
        assert result.output == f"queued again: #{submission.id}; failed: none\n"
        queued = reload(submission.id)
        assert queued.job_id is not None
        planned = Job.fetch(queued.job_id, connection=Redis.from_url(redis_url))
        assert planned.get_status() == JobStatus.QUEUED
        assert planned.retries_left == 2  # four runs in all, one used


@pytest.mark.redis
def test_rq_runs_a_failed_attempt_again_after_the_backoff(
    backends: Backends,
    tmp_path: Path,
    redis_url: str,
    music: Music,
    places: Places,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rq_app = create_app(
        base_config(
            backends,
            tmp_path,
            REDIS_URL=redis_url,
            JOB_RUNNER="rq",
            UPLOAD_DIR=str(places.uploads),
            WORK_DIR=str(places.work),
            FINGERPRINT_DIR=str(places.index),
            RETRY_BASE_SECONDS=60,
        )
    )

    def broken(plays: Sequence[Play], duration: float) -> list[Play]:
        raise ConnectionError("the catalogue went away")

    monkeypatch.setattr(stages, "build_tracklist", broken)
    connection = Redis.from_url(redis_url)
    with rq_app.app_context():
        index_library(music)
        submission_id = upload(places, music.mix).id
        job_id = jobs.enqueue_submission(submission_id)
        planned = Job.fetch(job_id, connection=connection, serializer=queues.SERIALIZER)
        assert (planned.retries_left, planned.retry_intervals) == (3, [60, 240, 960])

        # In this process, so that the fault above applies: RQ's own worker loop and retry.
        SimpleWorker(
            [queues.DEFAULT],
            connection=connection,
            serializer=queues.SERIALIZER,
            job_class=GuardedJob,
        ).work(burst=True)

        waiting = reload(submission_id)
        (attempt,) = attempts(submission_id)
        assert waiting.status == SubmissionStatus.QUEUED
        assert (
            waiting.reason
            == "a temporary problem stopped processing at tracklist: trying again soon"
        )
        assert (attempt.outcome, attempt.stage) == ("retrying", "tracklist")
        assert attempt.finished_at is not None
        assert waiting.retry_at == attempt.finished_at + timedelta(seconds=60)
        planned = Job.fetch(job_id, connection=connection, serializer=queues.SERIALIZER)
        assert planned.get_status() == JobStatus.SCHEDULED
        assert planned.retries_left == 2
        (due,) = ScheduledJobRegistry(queues.DEFAULT, connection=connection).get_job_ids()
        assert due == job_id
        when = ScheduledJobRegistry(queues.DEFAULT, connection=connection).get_scheduled_time(
            job_id
        )
        assert abs(when - waiting.retry_at) < timedelta(seconds=5)


@pytest.mark.redis
def test_the_periodic_run_is_scheduled_once_per_slot(redis_url: str, app: Flask) -> None:
    connection = Redis.from_url(redis_url)
    moment = datetime(2026, 5, 1, 12, 1, 30, tzinfo=UTC)

    first = maintenance.schedule_maintenance(connection, moment)
    again = maintenance.schedule_maintenance(connection, moment + timedelta(seconds=100))

    assert first == f"s2t-maintenance-{int(datetime(2026, 5, 1, 12, 5, tzinfo=UTC).timestamp())}"
    assert again is None
    registry = ScheduledJobRegistry(queues.LOW, connection=connection)
    assert registry.get_job_ids() == [first]
    assert registry.get_scheduled_time(first) == datetime(2026, 5, 1, 12, 5, tzinfo=UTC)
    # A run that fails (the database restarting) is tried again before the next slot.
    planned = Job.fetch(first, connection=connection, serializer=queues.SERIALIZER)
    assert planned.retries_left == 2


@pytest.mark.redis
def test_a_maintenance_run_schedules_the_next_and_cleans(
    backends: Backends, tmp_path: Path, redis_url: str, places: Places
) -> None:
    *_, fresh = leftovers(places.work)
    rq_app = create_app(
        base_config(
            backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq", WORK_DIR=str(places.work)
        )
    )
    with rq_app.app_context():
        queues.run_job(maintenance.RUN_MAINTENANCE)

    assert list(places.work.iterdir()) == [fresh]
    (scheduled,) = ScheduledJobRegistry(
        queues.LOW, connection=Redis.from_url(redis_url)
    ).get_job_ids()
    assert scheduled.startswith("s2t-maintenance-")
