"""Jobs: the same function runs in-process (embedded) or on a real RQ worker (production)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Callback, Queue, Repeat, Webhook
from rq.registry import StartedJobRegistry, clean_registries
from sqlalchemy import Connection, create_engine, text

from set2tracks import create_app
from set2tracks.auth.models import User
from set2tracks.extensions import db
from set2tracks.queues import (
    SERIALIZER,
    GuardedJob,
    UnknownJob,
    enqueue,
    inline_runner,
    registered_job,
    run_job,
)
from set2tracks.sets.models import DjSet
from tests.backends import Backends
from tests.conftest import TEST_SECRET_KEY, base_config
from tests.factories import DjSetFactory, SetTrackFactory, TrackFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
RECOUNT = "set2tracks.sets.jobs.recount_set"
RUN_JOB = "set2tracks.queues.run_job"


def _set_with_two_tracks() -> DjSet:
    dj_set = DjSetFactory(duration_seconds=600)
    SetTrackFactory(dj_set=dj_set, position=0, track=TrackFactory(), end_seconds=200)
    SetTrackFactory(
        dj_set=dj_set, position=1, track=TrackFactory(), start_seconds=200, end_seconds=300
    )
    return dj_set


def test_embedded_profile_runs_jobs_on_an_in_process_thread(app: Flask) -> None:
    set_id = _set_with_two_tracks().id
    db.session.commit()

    job_id = enqueue(RECOUNT, set_id)
    assert inline_runner().join(timeout=10)

    db.session.expire_all()
    assert job_id
    assert db.session.get(DjSet, set_id).track_count == 2  # type: ignore[union-attr]


def test_a_failing_job_does_not_stop_the_runner(app: Flask) -> None:
    # The test's session and the job thread share one connection here: take the id
    # before the job starts, and touch nothing until it is done.
    set_id = _set_with_two_tracks().id
    db.session.commit()

    enqueue(RECOUNT, 987_654)  # no such set: the job raises
    enqueue(RECOUNT, set_id)
    assert inline_runner().join(timeout=10)

    db.session.expire_all()
    assert db.session.get(DjSet, set_id).track_count == 2  # type: ignore[union-attr]


SET_ADMIN = "set2tracks.auth.services.set_admin"  # a function of ours, but no job


@pytest.mark.parametrize("path", ["os.system", SET_ADMIN, "set2tracks.queues.run_job"])
def test_only_registered_jobs_can_be_enqueued_or_run(
    app: Flask, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    attacker = UserFactory()
    db.session.commit()

    with pytest.raises(UnknownJob, match="not a registered job"):
        enqueue(path, attacker.email)
    with caplog.at_level(logging.ERROR, logger="set2tracks.queues"), pytest.raises(UnknownJob):
        run_job(path, attacker.email)

    db.session.expire_all()
    assert not db.session.get(User, attacker.id).is_admin  # type: ignore[union-attr]
    assert f"refused to run job {path!r}: it is not a registered job" in caplog.messages


def test_the_in_process_runner_refuses_an_unregistered_job(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    attacker = UserFactory()
    db.session.commit()

    # Straight to the runner, past enqueue's check: run_job refuses it all the same.
    set_id = _set_with_two_tracks().id
    db.session.commit()
    refused = inline_runner().submit(SET_ADMIN, (attacker.email,), "refused-inline")
    enqueue(RECOUNT, set_id)
    with caplog.at_level(logging.ERROR, logger="set2tracks.queues"):
        assert inline_runner().join(timeout=10)

    db.session.expire_all()
    assert isinstance(refused.error, UnknownJob)
    assert not db.session.get(User, attacker.id).is_admin  # type: ignore[union-attr]
    assert db.session.get(DjSet, set_id).track_count == 2  # type: ignore[union-attr]
    assert f"refused to run job {SET_ADMIN!r}: it is not a registered job" in caplog.messages


def test_every_job_the_app_enqueues_is_registered() -> None:
    enqueued = set()
    for source in (ROOT / "set2tracks").rglob("*.py"):
        enqueued |= set(re.findall(r"enqueue\(\s*\"([\w.]+)\"", source.read_text()))

    assert enqueued
    for path in sorted(enqueued | {RECOUNT}):
        assert callable(registered_job(path)), path


@pytest.mark.redis
def test_production_profile_puts_jobs_on_rq(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq"))

    with app.test_request_context(headers={"X-Request-ID": "req-0123456789"}):
        job_id = enqueue(RECOUNT, 42, queue="high", timeout=120)

    queue = Queue("high", connection=Redis.from_url(redis_url), serializer=SERIALIZER)
    job = queue.fetch_job(job_id)
    assert job is not None
    assert queue.job_ids == [job_id]
    assert job.description == RECOUNT
    assert job.args == [RECOUNT, 42]  # JSON: a list
    assert job.timeout == 120
    assert job.meta["request_id"] == "req-0123456789"


@pytest.mark.redis
def test_jobs_are_stored_as_json_never_as_pickles(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq"))

    with app.test_request_context(headers={"X-Request-ID": "req-0123456789"}):
        job_id = enqueue(RECOUNT, 42)

    stored = Redis.from_url(redis_url).hgetall(f"rq:job:{job_id}")
    data = json.loads(zlib.decompress(stored[b"data"]))
    assert data[0] == "set2tracks.queues.run_job"
    assert data[2] == [RECOUNT, 42]
    assert json.loads(stored[b"meta"]) == {"request_id": "req-0123456789"}


def _worker_environment(backends: Backends, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SET2TRACKS_ENV": "production",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": redis_url,
        "SITE_URL": "https://set2tracks.example",
        "PYTHONPATH": str(ROOT),
    }


def _worker(environment: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _enqueue_recount(backends: Backends, tmp_path: Path, redis_url: str) -> int:
    """Commit a set with two tracks and put its recount job on RQ; return the set id."""
    set_id = _set_with_two_tracks().id
    db.session.commit()
    producer = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq"))
    with producer.app_context():
        enqueue(RECOUNT, set_id)
    return set_id


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.committing
def test_worker_process_runs_the_job_against_postgresql(
    app: Flask, backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    set_id = _enqueue_recount(backends, tmp_path, redis_url)

    worker = _worker(_worker_environment(backends, redis_url), tmp_path)
    _, stderr = worker.communicate(timeout=120)

    assert worker.returncode == 0, stderr[-2000:]
    db.session.expire_all()
    assert db.session.get(DjSet, set_id).track_count == 2  # type: ignore[union-attr]
    assert Queue("default", connection=Redis.from_url(redis_url)).count == 0


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.committing
def test_sigterm_lets_the_worker_finish_the_current_job(
    app: Flask, backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    set_id = _enqueue_recount(backends, tmp_path, redis_url)
    blocker = create_engine(backends.database_url)
    with blocker.connect() as connection, blocker.connect() as observer:
        # Hold the set's row so the job blocks mid-way, inside its UPDATE.
        transaction = connection.begin()
        connection.execute(text("SELECT id FROM sets WHERE id = :id FOR UPDATE"), {"id": set_id})
        worker = _worker(_worker_environment(backends, redis_url), tmp_path)
        try:
            deadline = time.monotonic() + 60
            while not _job_waits_on_a_lock(observer):
                assert time.monotonic() < deadline, "the job never reached its UPDATE"
                time.sleep(0.2)
            worker.send_signal(signal.SIGTERM)
            time.sleep(1)
            assert worker.poll() is None, "the worker quit while its job was running"
        finally:
            transaction.rollback()
        _, stderr = worker.communicate(timeout=60)
    blocker.dispose()

    assert worker.returncode == 0, stderr[-2000:]
    db.session.expire_all()
    assert db.session.get(DjSet, set_id).track_count == 2  # type: ignore[union-attr]


class _RunsCode:
    """What an attacker who can write to Redis would store: unpickling it runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_never_unpickles_a_job_planted_in_redis(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    marker = tmp_path / "pwned"
    connection = Redis.from_url(redis_url)
    # A job written with RQ's default (pickle) serializer, as anyone reaching Redis could.
    Queue("default", connection=connection).enqueue(RECOUNT, _RunsCode(marker), job_id="planted")

    worker = _worker(_worker_environment(backends, redis_url), tmp_path)
    worker.communicate(timeout=120)

    assert not marker.exists(), "the worker ran code from a job planted in Redis"


@pytest.fixture
def loopback_hits() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server standing for an internal service; yields its URL and its hits."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            hits.append(f"{self.command} {self.path}")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.committing
def test_worker_refuses_jobs_planted_in_redis_that_name_anything_but_a_registered_job(
    app: Flask,
    backends: Backends,
    tmp_path: Path,
    redis_url: str,
    loopback_hits: tuple[str, list[str]],
) -> None:
    marker = tmp_path / "pwned"
    attacker = UserFactory()
    set_id = _set_with_two_tracks().id
    db.session.commit()
    # What anyone able to write to Redis can store, in the very format our queues use.
    queue = Queue("default", connection=Redis.from_url(redis_url), serializer=SERIALIZER)
    queue.enqueue("os.system", f"touch {marker}", job_id="names-os-system")
    queue.enqueue(RUN_JOB, SET_ADMIN, attacker.email, job_id="names-set-admin")
    queue.enqueue(SET_ADMIN, attacker.email, job_id="calls-set-admin")
    queue.enqueue(RUN_JOB, RECOUNT, 987_654, job_id="with-callback", on_failure=Callback(SET_ADMIN))
    # RQ 3.0 webhooks: the worker would POST the job's traceback, with the record's headers,
    # to any address the record names, from inside our network.
    internal, hits = loopback_hits
    webhooks = [
        Webhook(f"{internal}/internal-admin", status, method="POST", headers={"X-Admin": "1"})
        for status in ("failed", "finished")
    ]
    queue.enqueue("os.system", f"touch {marker}", job_id="os-system-webhook", webhooks=webhooks)
    queue.enqueue(RUN_JOB, RECOUNT, set_id, job_id="recount-webhook", webhooks=webhooks)
    # A registered job that asks to be run again and again: enqueue never asks for that.
    queue.enqueue(RUN_JOB, RECOUNT, set_id, job_id="recount-repeat", repeat=Repeat(times=3))
    queue.enqueue(RUN_JOB, RECOUNT, set_id, job_id="registered")

    worker = _worker(_worker_environment(backends, redis_url), tmp_path)
    _, stderr = worker.communicate(timeout=120)

    assert worker.returncode == 0, stderr[-2000:]
    assert not marker.exists(), "the worker ran os.system from a job planted in Redis"
    db.session.expire_all()
    assert not db.session.get(User, attacker.id).is_admin  # type: ignore[union-attr]
    assert db.session.get(DjSet, set_id).track_count == 2  # type: ignore[union-attr]
    assert hits == [], "the worker sent a webhook named in a job planted in Redis"
    assert sorted(queue.failed_job_registry.get_job_ids()) == [
        "calls-set-admin",
        "names-os-system",
        "names-set-admin",
        "os-system-webhook",
        "recount-repeat",
        "recount-webhook",
        "with-callback",
    ]
    assert f"refused to run job {SET_ADMIN!r}: it is not a registered job" in stderr
    assert "refused job names-os-system: it asks for 'os.system'" in stderr
    assert f"refused job calls-set-admin: it asks for {SET_ADMIN!r}" in stderr
    assert (
        f"refused job with-callback: it asks for {RUN_JOB!r} (callbacks [{SET_ADMIN!r}])" in stderr
    )
    assert "refused job recount-webhook: it asks for webhooks" in stderr
    assert "refused job recount-repeat: it asks for repeats" in stderr


@pytest.mark.redis
def test_a_planted_job_left_abandoned_sends_no_webhook_when_the_worker_cleans_up(
    redis_url: str, loopback_hits: tuple[str, list[str]]
) -> None:
    internal, hits = loopback_hits
    connection = Redis.from_url(redis_url)
    queue = Queue("default", connection=connection, serializer=SERIALIZER)
    queue.enqueue(
        RUN_JOB,
        RECOUNT,
        1,
        job_id="abandoned",
        webhooks=[Webhook(f"{internal}/internal-admin", "failed", method="POST")],
    )
    # As if a work-horse had died running it: started, with an execution long expired.
    connection.hset("rq:job:abandoned", "status", "started")
    connection.zadd(StartedJobRegistry("default", connection=connection).key, {"abandoned:x": 1})

    # What the worker's maintenance does with its queues, which build jobs as GuardedJob.
    clean_registries(
        Queue("default", connection=connection, serializer=SERIALIZER, job_class=GuardedJob)
    )

    assert queue.failed_job_registry.get_job_ids() == ["abandoned"]
    assert hits == [], "cleaning up an abandoned job sent the webhook its record names"


def _job_waits_on_a_lock(connection: Connection) -> bool:
    # Outside any transaction: pg_stat_activity is a snapshot within one.
    connection.rollback()
    waiting = connection.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE sets%'"
        )
    ).scalar_one()
    return bool(waiting)


def test_worker_refuses_the_embedded_profile(tmp_path: Path) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SET2TRACKS_ENV", "DATABASE_URL", "REDIS_URL"}
    }
    environment.update(PYTHONPATH=str(ROOT), SECRET_KEY=TEST_SECRET_KEY)

    worker = _worker(environment, tmp_path)
    _, stderr = worker.communicate(timeout=60)

    assert worker.returncode == 2
    assert "SET2TRACKS_ENV=production" in stderr


def test_job_log_lines_carry_the_job_and_the_request_that_queued_it(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    set_id = _set_with_two_tracks().id
    db.session.commit()

    with (
        caplog.at_level(logging.INFO, logger="set2tracks.sets.jobs"),
        app.test_request_context(headers={"X-Request-ID": "req-from-the-browser-1"}),
    ):
        job_id = enqueue(RECOUNT, set_id)
    assert inline_runner().join(timeout=10)

    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "set2tracks")
    records = [r for r in caplog.records if r.name == "set2tracks.sets.jobs"]
    assert len(records) == 1
    line = json.loads(handler.format(records[0]))
    assert line["job_id"] == job_id
    assert line["request_id"] == "req-from-the-browser-1"
