"""The processing job on real RQ workers (``worker.py`` subprocesses), PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Engine, create_engine, func, select, text

from set2tracks import create_app, queues
from set2tracks.database import utcnow
from set2tracks.extensions import db
from set2tracks.pipeline import jobs
from set2tracks.pipeline.maintenance import RUN_MAINTENANCE, clean_work_dir, schedule_maintenance
from set2tracks.sets.models import DjSet, SubmissionStatus
from tests.backends import Backends
from tests.conftest import TEST_SECRET_KEY, base_config
from tests.factories import UserFactory
from tests.pipeline.conftest import Music, Places, attempts, index_library, reload, upload
from tests.sets.submitting import API, bearer, post_file

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = [("Alpha", 0.0), (None, 26.0), ("Beta", 56.0), ("Gamma", 84.0)]
STAGES = ["vet", "decode", "recognize", "tracklist", "save", "notify"]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.committing]


@pytest.fixture
def producer(backends: Backends, tmp_path: Path, redis_url: str, places: Places) -> Iterator[Flask]:
    """An app of the production kind, that puts jobs on RQ (what the web process does)."""
    app = create_app(
        base_config(
            backends,
            tmp_path,
            REDIS_URL=redis_url,
            JOB_RUNNER="rq",
            UPLOAD_DIR=str(places.uploads),
            WORK_DIR=str(places.work),
            FINGERPRINT_DIR=str(places.index),
            MAIL_BACKEND="memory",
        )
    )
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def observer(backends: Backends) -> Iterator[Engine]:
    engine = create_engine(backends.database_url)
    yield engine
    engine.dispose()


def environment(backends: Backends, redis_url: str, places: Places) -> dict[str, str]:
    return {
        **os.environ,
        "SET2TRACKS_ENV": "production",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": redis_url,
        "SITE_URL": "https://set2tracks.example",
        "PYTHONPATH": str(ROOT),
        "UPLOAD_DIR": str(places.uploads),
        "WORK_DIR": str(places.work),
        "FINGERPRINT_DIR": str(places.index),
    }


def start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def stage_of(engine: Engine, submission_id: int) -> str | None:
    with engine.connect() as connection:
        stage: str | None = connection.execute(
            text("SELECT stage FROM submissions WHERE id = :id"), {"id": submission_id}
        ).scalar_one()
        return stage


def tracklist(set_id: int) -> list[tuple[str | None, float]]:
    db.session.expire_all()
    dj_set = db.session.get(DjSet, set_id)
    assert dj_set is not None
    return [(row.track.title if row.track else None, row.start_seconds) for row in dj_set.tracklist]


def assert_mix_tracklist(rows: list[tuple[str | None, float]]) -> None:
    """The mix's four plays, in order, at their start times (then, for the long mix, noise)."""
    assert [title for title, _ in rows[:4]] == [title for title, _ in EXPECTED]
    assert all(title is None for title, _ in rows[4:])
    for (title, start), (_, expected) in zip(rows, EXPECTED, strict=False):
        assert start == pytest.approx(expected, abs=4.0), title


def test_a_worker_turns_an_upload_into_a_published_private_set(
    app: Flask,
    backends: Backends,
    redis_url: str,
    music: Music,
    places: Places,
    producer: Flask,
    tmp_path: Path,
) -> None:
    index_library(music)
    owner, stranger = UserFactory(), UserFactory()
    client = producer.test_client()
    mine, theirs = bearer(owner), bearer(stranger)

    posted = post_file(client, music.mix, name="Friday night.mp3", headers=mine)

    assert posted.status_code == 202, posted.json
    assert posted.json is not None
    submission_id = posted.json["id"]
    assert (posted.json["status"], posted.json["progress"]) == ("queued", 0)
    worker = start_worker(environment(backends, redis_url, places), tmp_path)
    seen: list[str] = []
    while worker.poll() is None:
        stage = client.get(f"{API}/{submission_id}", headers=mine).json["stage"]  # type: ignore[index]
        if stage and (not seen or seen[-1] != stage):
            seen.append(stage)
        time.sleep(0.02)
    _, stderr = worker.communicate(timeout=60)

    assert worker.returncode == 0, stderr[-3000:]
    status = client.get(f"{API}/{submission_id}", headers=mine).json
    assert status is not None
    assert (status["status"], status["stage"], status["progress"]) == ("published", "notify", 100)
    # Whatever the polls caught of the stages, they came in their order.
    assert seen == sorted(seen, key=STAGES.index)
    assert seen[-1] == "notify"
    dj_set = client.get(f"/api/v1/sets/{status['set_id']}", headers=mine)
    assert dj_set.status_code == 200
    assert dj_set.json is not None
    assert dj_set.json["title"] == "Friday night"
    assert_mix_tracklist(
        [
            (row["track"]["title"] if row["track"] else None, row["start"])
            for row in dj_set.json["tracklist"]
        ]
    )
    # Private: to anyone else the set does not exist.
    assert client.get(f"/api/v1/sets/{status['set_id']}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/sets/{status['set_id']}").status_code == 404
    assert [(a.number, a.outcome, a.stage) for a in attempts(submission_id)] == [
        (1, "published", "save")
    ]
    assert list(places.work.iterdir()) == []
    assert list(places.uploads.iterdir()) == []


def horse_of(worker_pid: int) -> int | None:
    """The work-horse a worker forked to run its job (it has a process group of its own)."""
    children = Path(f"/proc/{worker_pid}/task/{worker_pid}/children").read_text().split()
    return int(children[0]) if children else None


def test_a_worker_killed_mid_job_is_recovered_with_the_same_result(
    app: Flask,
    backends: Backends,
    redis_url: str,
    music: Music,
    places: Places,
    producer: Flask,
    observer: Engine,
    tmp_path: Path,
) -> None:
    index_library(music)
    submission_id = upload(places, music.long_mix).id
    first_job = jobs.enqueue_submission(submission_id)
    env = environment(backends, redis_url, places)

    worker = start_worker(env, tmp_path)
    deadline = time.monotonic() + 120
    while stage_of(observer, submission_id) not in ("decode", "recognize"):
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the job never reached decode or recognize"
        time.sleep(0.01)
    horse = horse_of(worker.pid)
    assert horse is not None
    # The whole worker dies at once, as in a lost machine: no handler runs anywhere.
    os.killpg(worker.pid, signal.SIGKILL)
    os.killpg(horse, signal.SIGKILL)
    worker.communicate(timeout=30)
    killed_at = stage_of(observer, submission_id)
    assert reload(submission_id).status == SubmissionStatus.RUNNING
    # The heartbeat goes stale while nothing runs the job (3 minutes, skipped here).
    with observer.begin() as connection:
        connection.execute(
            text(
                "UPDATE submissions SET heartbeat_at = heartbeat_at - interval '10 minutes'"
                " WHERE id = :id"
            ),
            {"id": submission_id},
        )

    # A new worker sweeps at start: the job is gone (its worker is dead), so the
    # submission is queued again, and this worker runs it.
    again = start_worker(env, tmp_path)
    _, stderr = again.communicate(timeout=300)

    assert again.returncode == 0, stderr[-3000:]
    done = reload(submission_id)
    assert done.status == SubmissionStatus.PUBLISHED
    assert done.job_id != first_job
    assert_mix_tracklist(tracklist(done.set_id or 0))
    tried = attempts(submission_id)
    assert [(a.number, a.outcome, a.stage) for a in tried] == [
        (1, "abandoned", killed_at),
        (2, "published", "save"),
    ]
    assert tried[0].job_id == first_job
    assert tried[0].reason == f"the worker running it stopped at {killed_at}"
    assert db.session.scalar(select(func.count()).select_from(DjSet)) == 1
    # The killed attempt could not delete its folder; the periodic clean-up does, later.
    (leftover,) = places.work.iterdir()
    assert leftover.name.startswith(f"submission-{submission_id}-1-")
    assert clean_work_dir(timedelta(0)) == [leftover.name]
    assert list(places.work.iterdir()) == []


def test_two_workers_given_the_same_job_process_the_submission_once(
    app: Flask,
    backends: Backends,
    redis_url: str,
    music: Music,
    places: Places,
    producer: Flask,
    tmp_path: Path,
) -> None:
    index_library(music)
    submission_id = upload(places, music.long_mix).id
    job_id = jobs.enqueue_submission(submission_id)
    connection = Redis.from_url(redis_url)
    queue = queues.rq_queue(queues.DEFAULT, connection)
    # The same job twice in the queue: what RQ's abandoned-job retry and a live horse, or a
    # duplicated message, amount to.
    queue.enqueue_job(Job.fetch(job_id, connection=connection, serializer=queues.SERIALIZER))
    assert queue.job_ids == [job_id, job_id]
    env = environment(backends, redis_url, places)

    workers = [start_worker(env, tmp_path), start_worker(env, tmp_path)]
    outputs = [worker.communicate(timeout=300)[1] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    done = reload(submission_id)
    assert (done.status, done.attempts) == (SubmissionStatus.PUBLISHED, 1)
    assert [(a.number, a.outcome) for a in attempts(submission_id)] == [(1, "published")]
    assert db.session.scalar(select(func.count()).select_from(DjSet)) == 1
    assert_mix_tracklist(tracklist(done.set_id or 0))
    # One worker processed it; the other found it taken.
    refusals = [
        log
        for log in outputs
        if f"submission {submission_id} is being processed by a live attempt" in log
        or f"submission {submission_id} is published after 1 attempt(s)" in log
    ]
    assert len(refusals) == 1, outputs


def test_a_worker_schedules_the_periodic_maintenance_once(
    backends: Backends, redis_url: str, places: Places, producer: Flask, tmp_path: Path
) -> None:
    env = environment(backends, redis_url, places)
    connection = Redis.from_url(redis_url)
    registry = ScheduledJobRegistry(queues.LOW, connection=connection)

    for _ in range(2):
        worker = start_worker(env, tmp_path)
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr[-3000:]

    (scheduled,) = registry.get_job_ids()
    assert scheduled.startswith("s2t-maintenance-")
    planned = Job.fetch(scheduled, connection=connection, serializer=queues.SERIALIZER)
    assert planned.args == [RUN_MAINTENANCE]
    assert planned.func_name == queues.RUN_JOB


def test_a_due_maintenance_run_is_run_by_a_worker_and_schedules_the_next(
    backends: Backends, redis_url: str, places: Places, producer: Flask, tmp_path: Path
) -> None:
    places.work.mkdir()
    leftover = places.work / "submission-9-1-0123456789ab"
    leftover.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(leftover, (two_days_ago, two_days_ago))
    connection = Redis.from_url(redis_url)
    due = schedule_maintenance(connection, utcnow() - timedelta(minutes=10))
    assert due is not None

    worker = start_worker(environment(backends, redis_url, places), tmp_path)
    _, stderr = worker.communicate(timeout=120)

    assert worker.returncode == 0, stderr[-3000:]
    assert Job.fetch(due, connection=connection, serializer=queues.SERIALIZER).is_finished
    assert list(places.work.iterdir()) == []
    (following,) = ScheduledJobRegistry(queues.LOW, connection=connection).get_job_ids()
    assert following.startswith("s2t-maintenance-")
    assert following > due


@pytest.mark.usefixtures("producer")
def test_the_periodic_maintenance_survives_redis_losing_its_data(
    backends: Backends, redis_url: str, places: Places, tmp_path: Path
) -> None:
    # Redis restarted without persistence (or evicted keys): RQ workers reconnect and go on,
    # but the one scheduled maintenance run, which the sweep of lost jobs depends on, is gone.
    connection = Redis.from_url(redis_url)
    registry = ScheduledJobRegistry(queues.LOW, connection=connection)
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=tmp_path,
        env=environment(backends, redis_url, places),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert _within(60, lambda: bool(registry.get_job_ids()))
        connection.flushdb()
        # Longer than the worker's own maintenance interval (60 s): a live worker puts the
        # periodic run back on the schedule.
        assert _within(150, lambda: bool(registry.get_job_ids())), "maintenance stopped for good"
        (scheduled,) = registry.get_job_ids()
        assert scheduled.startswith("s2t-maintenance-")
    finally:
        os.kill(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return False
