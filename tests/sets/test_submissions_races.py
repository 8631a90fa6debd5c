"""Identical submissions at the same moment make one row; quotas hold under concurrency.

Uploads in progress hold places in the active quota, in the process (embedded profile) or
in Redis (production).

Real PostgreSQL, real commits, one test client per thread: each request has its own
connection and transaction, as two gunicorn workers would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select, update

from set2tracks import create_app
from set2tracks.auth.models import User
from set2tracks.extensions import db
from set2tracks.sets.models import Submission, SubmissionStatus
from set2tracks.sets.upload_slots import upload_slots
from tests.auth.helpers import make_user, meeting_before_insert
from tests.backends import Backends
from tests.conftest import base_config
from tests.sets.submitting import (
    API,
    HeldBody,
    WatchedBody,
    bearer,
    multipart_upload,
    post_file,
    stored_uploads,
)

VIDEO = "dQw4w9WgXcQ"

pytestmark = [pytest.mark.postgres, pytest.mark.committing]


@contextlib.contextmanager
def meeting_before_lock(parties: int = 2) -> Iterator[None]:
    """Hold each thread's first ``... FOR UPDATE`` until every thread has reached its own.

    Every request has then made its own checks for a twin (and found none) before any of
    them locks, counts and inserts: check-then-insert would let both through, every time.
    """
    barrier = threading.Barrier(parties)
    waited = threading.local()

    def meet(*args: Any) -> None:
        statement = str(args[2]).upper()
        if "FOR UPDATE" in statement and not getattr(waited, "done", False):
            waited.done = True
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)

    event.listen(db.engine, "before_cursor_execute", meet)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", meet)


def race(app: Flask, requests: list[Callable[[Any], Any]]) -> list[Any]:
    """Send each request from its own client and thread at once; return the responses."""
    responses: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        responses[index] = requests[index](app.test_client())

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def rows(**match: Any) -> list[Submission]:
    with db.session.no_autoflush:
        return list(db.session.scalars(select(Submission).filter_by(**match)))


def test_two_people_submitting_one_video_at_once_make_one_submission(app: Flask) -> None:
    with app.app_context():
        ada, bob = bearer(make_user("ada@example.com")), bearer(make_user("bob@example.com"))

    with app.app_context(), meeting_before_insert("submissions"):
        responses = race(
            app,
            [
                lambda client: client.post(API, json={"url": VIDEO}, headers=ada),
                lambda client: client.post(
                    API, json={"url": f"https://youtu.be/{VIDEO}"}, headers=bob
                ),
            ],
        )

    assert sorted(response.status_code for response in responses) == [200, 202]
    assert len({response.json["id"] for response in responses}) == 1
    with app.app_context():
        assert len(rows(video_id=VIDEO)) == 1


def test_one_file_sent_twice_at_once_makes_one_submission_and_keeps_one_file(
    app: Flask, media: dict[str, Path]
) -> None:
    with app.app_context():
        headers = bearer(make_user())
    before = stored_uploads(app)

    with app.app_context(), meeting_before_lock():
        responses = race(
            app, [lambda client: post_file(client, media["mix.mp3"], headers=headers)] * 2
        )

    assert sorted(response.status_code for response in responses) == [200, 202]
    assert len({response.json["id"] for response in responses}) == 1
    with app.app_context():
        (only,) = rows()
        assert {Path(only.upload_path or "")} == stored_uploads(app) - before


def test_the_active_quota_holds_when_two_submissions_race_for_its_last_place(
    app: Flask,
) -> None:
    with app.app_context():
        user = make_user()
        user_id = user.id
        for number in range(2):
            db.session.add(Submission(source="youtube", video_id=f"busy{number:07d}", user=user))
        db.session.commit()
        headers = bearer(db.session.get(User, user_id))

    with app.app_context(), meeting_before_lock():
        responses = race(
            app,
            [
                lambda client: client.post(API, json={"url": "aaaaaaaaaaa"}, headers=headers),
                lambda client: client.post(API, json={"url": "bbbbbbbbbbb"}, headers=headers),
            ],
        )

    assert sorted(response.status_code for response in responses) == [202, 429]
    with app.app_context():
        active = db.session.scalar(
            select(func.count())
            .select_from(Submission)
            .where(Submission.user_id == user_id, Submission.status == SubmissionStatus.QUEUED)
        )
        assert active == 3


@pytest.mark.parametrize("store", ["process", pytest.param("redis", marks=pytest.mark.redis)])
def test_parallel_uploads_cannot_pass_the_active_quota_while_they_stream(
    request: pytest.FixtureRequest,
    app: Flask,
    backends: Backends,
    tmp_path: Path,
    media: dict[str, Path],
    store: str,
) -> None:
    """Each upload holds a place from before its first byte to its end: a second upload
    started while the first one streams is refused before a byte of it is read."""
    web = app
    if store == "redis":
        redis_url = request.getfixturevalue("redis_url")
        web = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url))
    with web.app_context():
        user = make_user()
        user_id = user.id
        busy = [
            Submission(source="youtube", video_id=f"busy{number:07d}", user=user)
            for number in range(2)
        ]
        db.session.add_all(busy)
        db.session.commit()
        busy_id = busy[0].id
        headers = bearer(db.session.get(User, user_id))
    payload, content_type = multipart_upload(media["mix.mp3"])
    first_body = HeldBody(payload, hold_at=len(payload) // 2)
    first: list[Any] = []

    def upload_first() -> None:
        first.append(
            web.test_client().post(
                API,
                input_stream=first_body,
                content_length=len(payload),
                content_type=content_type,
                headers=headers,
            )
        )

    thread = threading.Thread(target=upload_first)
    thread.start()
    try:
        assert first_body.reached.wait(timeout=30), "the first upload never started"
        second_body = WatchedBody(payload)
        second = web.test_client().post(
            API,
            input_stream=second_body,
            content_length=len(payload),
            content_type=content_type,
            headers=headers,
        )
    finally:
        first_body.release.set()
        thread.join(timeout=60)

    assert second.status_code == 429
    assert second.headers["Retry-After"] == "60"
    assert "2 sets being processed and 1 being uploaded" in second.json["detail"]
    assert second_body.bytes_read == 0
    assert first[0].status_code == 202
    with web.app_context():
        db.session.execute(
            update(Submission)
            .where(Submission.id == busy_id)
            .values(status=SubmissionStatus.CANCELLED)
        )
        db.session.commit()
    # A place is free again, and the first upload gave its own back when it ended.
    again = post_file(web.test_client(), media["mix.flac"], headers=headers)
    assert again.status_code == 202
    with web.app_context():
        assert upload_slots().count(user_id) == 0
