"""Identical submissions at the same moment make one row; quotas hold under concurrency.

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
from sqlalchemy import event, func, select

from set2tracks.auth.models import User
from set2tracks.extensions import db
from set2tracks.sets.models import Submission, SubmissionStatus
from tests.auth.helpers import make_user, meeting_before_insert
from tests.sets.submitting import API, bearer, post_file, stored_uploads

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
