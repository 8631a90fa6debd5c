"""``/api/v1/submissions``: submitting links and uploads, duplicates, quotas, who sees what."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from set2tracks import create_app
from set2tracks.database import utcnow
from set2tracks.extensions import db
from set2tracks.queues import SERIALIZER, inline_runner
from set2tracks.sets.models import SetSource, SubmissionStatus
from set2tracks.sets.services import recount_set
from set2tracks.sets.submissions import YOUTUBE_WAITING
from set2tracks.sets.upload_slots import upload_slots
from tests.auth.helpers import csrf_token, sign_in
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import (
    DjSetFactory,
    SetTrackFactory,
    SubmissionFactory,
    TrackFactory,
    UserFactory,
)
from tests.sets.submitting import (
    API,
    WatchedBody,
    bearer,
    multipart_upload,
    post_file,
    stored_uploads,
    submission,
    submission_count,
)

VIDEO = "dQw4w9WgXcQ"


def test_a_youtube_link_is_stored_and_waits_for_youtube_support(client: FlaskClient) -> None:
    user = UserFactory()
    headers = bearer(user)

    response = client.post(
        API, json={"url": f"https://youtu.be/{VIDEO}?si=share", "notify": True}, headers=headers
    )

    assert response.status_code == 202
    body = response.json
    assert body["status"] == "queued"
    assert body["video_id"] == VIDEO
    assert body["source"] == "youtube"
    assert body["notify"] is True
    assert body["reason"] == YOUTUBE_WAITING
    assert (body["stage"], body["progress"], body["attempts"]) == (None, 0, 0)
    assert body["links"]["self"].endswith(f"/api/v1/submissions/{body['id']}")
    assert body["links"]["page"].endswith(f"/submissions/{body['id']}")
    assert body["links"]["set"] is None
    assert response.headers["Location"] == f"/api/v1/submissions/{body['id']}"
    stored = submission(body["id"])
    assert stored.user_id == user.id
    assert stored.job_id is None  # no YouTube source yet: nothing to run


def test_an_upload_is_streamed_to_a_name_of_ours_probed_and_queued(
    app: Flask, client: FlaskClient, media: dict[str, Path]
) -> None:
    user = UserFactory()
    headers = bearer(user)
    before = stored_uploads(app)

    response = post_file(
        client, media["mix.mp3"], name="../Sunset Mix.mp3", headers=headers, notify="true"
    )

    assert response.status_code == 202, response.json
    body = response.json
    assert (body["source"], body["status"], body["upload_name"]) == (
        "upload",
        "queued",
        "Sunset Mix.mp3",
    )
    assert body["duration_seconds"] == pytest.approx(40, abs=0.2)
    assert body["upload_size"] == media["mix.mp3"].stat().st_size
    stored = submission(body["id"])
    (new_file,) = stored_uploads(app) - before
    assert stored.upload_path == str(new_file)
    assert "Sunset" not in new_file.name
    assert ".." not in stored.upload_path
    assert new_file.read_bytes() == media["mix.mp3"].read_bytes()
    assert stored.upload_sha256 == hashlib.sha256(new_file.read_bytes()).hexdigest()
    assert stored.notify_by_email is True
    assert stored.job_id is not None  # the processing job is queued
    assert inline_runner()._jobs.qsize() >= 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.mp3", "The file is empty."),
        ("notes.mp3", "This file cannot be used: "),
        ("cover.mp3", "This file cannot be used: "),
        ("playlist.mp3", "This file cannot be used: "),
        ("concat.mp3", "This file cannot be used: "),
        ("short.mp3", "This recording lasts 5 s: a set must last at least 30 s."),
        ("bomb.flac", "This recording lasts 7 h 00 min: a set may last at most 6 h 00 min."),
    ],
)
def test_uploads_that_are_not_a_set_are_refused_and_leave_nothing(
    app: Flask, client: FlaskClient, media: dict[str, Path], name: str, message: str
) -> None:
    headers = bearer(UserFactory())
    before, rows = stored_uploads(app), submission_count()

    response = post_file(client, media[name], headers=headers)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"].startswith(message)
    assert response.json["errors"] == {"file": [response.json["detail"]]}
    assert stored_uploads(app) == before
    assert submission_count() == rows


@pytest.mark.parametrize("size", [120_000, 400_000], ids=["while-streaming", "by-its-length"])
def test_an_upload_over_the_size_limit_is_413_and_leaves_nothing(
    backends: Backends, tmp_path: Path, size: int
) -> None:
    """Over by less than the form's allowance, the sink stops it; by more, werkzeug does."""
    small = create_app(base_config(backends, tmp_path, UPLOAD_MAX_BYTES=100_000))
    client = small.test_client()
    with small.app_context():
        headers = bearer(UserFactory())
    big = tmp_path / "big.mp3"
    big.write_bytes(b"\xff\xfb" * (size // 2))

    response = post_file(client, big, headers=headers)

    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert "at most 0.0953674 MB" in response.json["detail"]
    assert stored_uploads(small) == set()


def test_an_upload_cut_off_midway_leaves_nothing(app: Flask, client: FlaskClient) -> None:
    headers = bearer(UserFactory())
    before = stored_uploads(app)
    head = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="mix.mp3"\r\n'
        b"Content-Type: audio/mpeg\r\n\r\n"
    )
    sent = head + b"\xff" * 300_000  # the client goes away before the rest

    response = client.post(
        API,
        input_stream=io.BytesIO(sent),
        content_length=len(sent) + 200_000,
        content_type="multipart/form-data; boundary=x",
        headers=headers,
    )

    # werkzeug reads an unfinished form as one without its file.
    assert response.status_code in (400, 422)
    assert stored_uploads(app) == before
    assert submission_count() == 0


def test_only_multipart_bodies_may_be_large(client: FlaskClient) -> None:
    """A URL-encoded form is read whole into memory: it keeps the app's 1 MB limit."""
    headers = bearer(UserFactory())

    response = client.post(
        API,
        data="url=" + "a" * 2_000_000,
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )

    assert response.status_code == 413


def test_the_quota_is_checked_before_the_upload_is_read(app: Flask, client: FlaskClient) -> None:
    user = UserFactory()
    for _ in range(3):
        SubmissionFactory(user=user, status=SubmissionStatus.RUNNING)
    headers = bearer(user)
    body = WatchedBody(b"--x\r\n" + b"\0" * 500_000)

    response = client.post(
        API,
        input_stream=body,
        content_length=len(body.getvalue()),
        content_type="multipart/form-data; boundary=x",
        headers=headers,
    )

    assert response.status_code == 429
    assert body.bytes_read == 0


def test_the_body_watcher_sees_a_body_that_is_read(client: FlaskClient) -> None:
    """The instrument of the test above can fail: werkzeug reads with readinto(), and a
    counter of read() calls alone saw nothing even when every byte was read."""
    headers = bearer(UserFactory())  # quota left: the body is read and parsed
    body = WatchedBody(b"--x\r\n" + b"\0" * 100_000)

    response = client.post(
        API,
        input_stream=body,
        content_length=len(body.getvalue()),
        content_type="multipart/form-data; boundary=x",
        headers=headers,
    )

    assert response.status_code == 400  # read to its end: no closing boundary
    assert body.bytes_read == len(body.getvalue())


def test_an_upload_in_progress_takes_a_place_in_the_active_quota(
    app: Flask, client: FlaskClient, media: dict[str, Path]
) -> None:
    """Uploads of one user at once: each holds a place while its body arrives (another
    request's upload is held here by taking its place as that request would)."""
    user = UserFactory()
    for _ in range(2):
        SubmissionFactory(user=user, status=SubmissionStatus.RUNNING)
    headers = bearer(user)
    slots = upload_slots()
    arriving = slots.take(user.id, limit=1)
    assert arriving is not None
    payload, content_type = multipart_upload(media["mix.mp3"])
    body = WatchedBody(payload)
    before = stored_uploads(app)

    refused = client.post(
        API,
        input_stream=body,
        content_length=len(payload),
        content_type=content_type,
        headers=headers,
    )
    link = client.post(API, json={"url": VIDEO}, headers=headers)
    slots.release(user.id, arriving)
    accepted = post_file(client, media["mix.mp3"], headers=headers)

    assert (refused.status_code, link.status_code, accepted.status_code) == (429, 429, 202)
    assert refused.headers["Retry-After"] == "60"
    assert refused.json["detail"].startswith(
        "You have 2 sets being processed and 1 being uploaded, the most at once"
    )
    assert body.bytes_read == 0
    assert len(stored_uploads(app) - before) == 1  # the accepted upload's file only
    assert slots.count(user.id) == 0  # each request gave its place back


def test_the_same_file_twice_from_one_user_is_one_submission(
    app: Flask, client: FlaskClient, media: dict[str, Path]
) -> None:
    user = UserFactory()
    headers = bearer(user)
    first = post_file(client, media["mix.flac"], headers=headers)
    files, rows = stored_uploads(app), submission_count()

    again = post_file(client, media["mix.flac"], name="renamed.flac", headers=headers)

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["id"] == first.json["id"]
    assert stored_uploads(app) == files  # the duplicate's file is gone
    assert submission_count() == rows
    other_user = post_file(client, media["mix.flac"], headers=bearer(UserFactory()))
    assert other_user.status_code == 202
    assert other_user.json["id"] != first.json["id"]


def test_a_published_video_answers_with_its_set(client: FlaskClient) -> None:
    dj_set = DjSetFactory(video_id=VIDEO, title="Sunrise at Cercle")
    headers = bearer(UserFactory())
    rows = submission_count()

    response = client.post(
        API, json={"url": f"https://www.youtube.com/watch?v={VIDEO}"}, headers=headers
    )

    assert response.status_code == 200
    assert (response.json["id"], response.json["title"]) == (dj_set.id, "Sunrise at Cercle")
    assert submission_count() == rows


def test_an_active_submission_of_the_video_answers_with_how_far_it_is(
    client: FlaskClient,
) -> None:
    """Someone else's submission of the same video: that it exists and how far it is,
    nothing of what they asked for (their email choice, attempts, times, links)."""
    ada, bob = UserFactory(), UserFactory()
    ada_headers, bob_headers = bearer(ada), bearer(bob)
    first = client.post(API, json={"url": VIDEO, "notify": True}, headers=ada_headers)
    client.post(API, json={"url": VIDEO}, headers=ada_headers)  # hers: the same one, in full

    second = client.post(API, json={"url": VIDEO}, headers=bob_headers)

    assert second.status_code == 200
    assert second.json == {
        "id": first.json["id"],
        "status": "queued",
        "stage": None,
        "progress": 0,
    }
    assert client.get(f"{API}/{second.json['id']}", headers=bob_headers).status_code == 404
    again = client.post(API, json={"url": VIDEO}, headers=ada_headers)
    assert again.status_code == 200
    assert again.json["notify"] is True
    assert again.json["links"]["self"] is not None


def test_a_video_whose_submission_ended_can_be_submitted_again(client: FlaskClient) -> None:
    SubmissionFactory(video_id=VIDEO, status=SubmissionStatus.FAILED)

    response = client.post(API, json={"url": VIDEO}, headers=bearer(UserFactory()))

    assert response.status_code == 202


def test_too_many_submissions_at_once_is_429_with_when(client: FlaskClient) -> None:
    user = UserFactory()
    SubmissionFactory(user=user, status=SubmissionStatus.QUEUED)
    SubmissionFactory(user=user, status=SubmissionStatus.RUNNING)
    SubmissionFactory(user=user, status=SubmissionStatus.WAITING)
    SubmissionFactory(user=user, status=SubmissionStatus.FAILED)
    headers = bearer(user)

    response = client.post(API, json={"url": VIDEO}, headers=headers)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert response.json["detail"] == (
        "You have 3 sets being processed, the most at once for your account: submit this one"
        " when one of them is done."
    )


def test_too_many_submissions_in_an_hour_is_429_until_the_oldest_leaves_the_hour(
    client: FlaskClient,
) -> None:
    user = UserFactory()
    now = utcnow()
    for minutes in range(50, 0, -5):  # 10 submissions, the oldest 50 minutes ago
        SubmissionFactory(
            user=user,
            status=SubmissionStatus.PUBLISHED,
            created_at=now - timedelta(minutes=minutes),
        )
    SubmissionFactory(
        user=user, status=SubmissionStatus.PUBLISHED, created_at=now - timedelta(minutes=61)
    )
    headers = bearer(user)

    response = client.post(API, json={"url": VIDEO}, headers=headers)

    assert response.status_code == 429
    assert 590 <= int(response.headers["Retry-After"]) <= 601
    assert "10 submissions in the last hour" in response.json["detail"]
    assert (
        "try again in 10 min" in response.json["detail"]
        or "try again in 9 min" in (response.json["detail"])
    )


def test_premium_accounts_get_higher_quotas_and_priority(client: FlaskClient) -> None:
    user = UserFactory(is_premium=True)
    for _ in range(3):
        SubmissionFactory(user=user, status=SubmissionStatus.RUNNING)
    headers = bearer(user)

    response = client.post(API, json={"url": VIDEO}, headers=headers)

    assert response.status_code == 202
    assert submission(response.json["id"]).priority == 1


@pytest.mark.redis
def test_a_premium_upload_goes_to_the_high_queue(
    backends: Backends, tmp_path: Path, redis_url: str, media: dict[str, Path]
) -> None:
    producer = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq"))
    with producer.app_context():
        premium, plain = bearer(UserFactory(is_premium=True)), bearer(UserFactory())
    client = producer.test_client()

    fast = post_file(client, media["mix.mp3"], headers=premium)
    slow = post_file(client, media["mix.mp3"], headers=plain)

    connection = Redis.from_url(redis_url)
    assert (fast.status_code, slow.status_code) == (202, 202)
    with producer.app_context():
        assert Queue("high", connection=connection, serializer=SERIALIZER).job_ids == [
            submission(fast.json["id"]).job_id
        ]
        assert Queue("default", connection=connection, serializer=SERIALIZER).job_ids == [
            submission(slow.json["id"]).job_id
        ]


def test_a_form_needs_a_file_or_a_link_but_not_both(
    client: FlaskClient, media: dict[str, Path], app: Flask
) -> None:
    headers = bearer(UserFactory())
    before = stored_uploads(app)

    both = post_file(client, media["mix.mp3"], headers=headers, url=VIDEO)
    neither = client.post(API, data={"notify": "on"}, headers=headers)
    link = client.post(API, data={"url": VIDEO, "notify": "on"}, headers=headers)

    assert both.status_code == 422
    assert neither.status_code == 422
    assert "file" in neither.json["detail"]
    assert stored_uploads(app) == before
    assert link.status_code == 202
    assert submission(link.json["id"]).notify_by_email is True


def test_other_bodies_are_415(client: FlaskClient) -> None:
    response = client.post(
        API, data="url=x", content_type="text/plain", headers=bearer(UserFactory())
    )

    assert response.status_code == 415
    assert "multipart/form-data" in response.json["detail"]


def test_bad_json_is_422_with_the_fields(client: FlaskClient) -> None:
    headers = bearer(UserFactory())

    missing = client.post(API, json={"notify": True}, headers=headers)
    unknown = client.post(API, json={"url": VIDEO, "colour": "red"}, headers=headers)
    wrong = client.post(API, json={"url": "https://vimeo.com/123"}, headers=headers)

    assert missing.status_code == unknown.status_code == wrong.status_code == 422
    assert "url" in missing.json["errors"]["json"]
    assert "colour" in unknown.json["errors"]["json"]
    assert "youtu.be" in wrong.json["detail"]


def test_anonymous_clients_are_401_and_nothing_is_read(app: Flask, media: dict[str, Path]) -> None:
    client = app.test_client()
    before = stored_uploads(app)

    # A JSON post without credentials meets the CSRF check first, as every API write does.
    assert client.post(API, json={"url": VIDEO}).status_code == 400
    assert post_file(client, media["mix.mp3"]).status_code == 401
    assert client.get(API).status_code == 401
    assert stored_uploads(app) == before


def test_a_browser_session_needs_its_csrf_token(app: Flask, media: dict[str, Path]) -> None:
    client = app.test_client()
    sign_in(client, UserFactory())
    db.session.commit()
    token = csrf_token(client)
    before = stored_uploads(app)

    forged_link = client.post(API, json={"url": VIDEO})
    forged_upload = post_file(client, media["mix.mp3"])

    assert forged_link.status_code == 400
    assert forged_upload.status_code == 400
    assert stored_uploads(app) == before
    assert client.post(API, json={"url": VIDEO}, headers={"X-CSRFToken": token}).status_code == 202
    uploaded = post_file(client, media["mix.mp3"], csrf_token=token)
    assert uploaded.status_code == 202


def test_people_list_and_read_their_own_submissions_only(client: FlaskClient) -> None:
    ada, bob = UserFactory(), UserFactory()
    mine = [SubmissionFactory(user=ada) for _ in range(3)]
    theirs = SubmissionFactory(user=bob)
    headers = bearer(ada)

    first = client.get(API, query_string={"limit": 2}, headers=headers).json
    second = client.get(
        API, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    ).json

    listed = [item["id"] for item in first["items"] + second["items"]]
    assert sorted(listed) == sorted(s.id for s in mine)
    assert second["next_cursor"] is None
    assert client.get(f"{API}/{mine[0].id}", headers=headers).status_code == 200
    assert client.get(f"{API}/{theirs.id}", headers=headers).status_code == 404
    admin = bearer(UserFactory(is_admin=True))
    assert client.get(f"{API}/{theirs.id}", headers=admin).status_code == 200


def test_a_submission_shows_its_attempts_and_its_set_once_published(client: FlaskClient) -> None:
    from set2tracks.sets.models import SubmissionAttempt

    user = UserFactory()
    dj_set = DjSetFactory(source=SetSource.UPLOAD, video_id=None, channel=None, submitted_by=user)
    done = SubmissionFactory(
        user=user,
        source=SetSource.UPLOAD,
        video_id=None,
        upload_path="/nowhere/abc",
        status=SubmissionStatus.PUBLISHED,
        stage="notify",
        progress=100,
        attempts=2,
        dj_set=dj_set,
    )
    db.session.add_all(
        [
            SubmissionAttempt(
                submission=done, number=1, outcome="retrying", stage="recognize", reason="Busy."
            ),
            SubmissionAttempt(submission=done, number=2, outcome="published", stage="notify"),
        ]
    )

    body = client.get(f"{API}/{done.id}", headers=bearer(user)).json

    assert body["links"]["set"].endswith(f"/api/v1/sets/{dj_set.id}")
    assert (body["status"], body["stage"], body["progress"]) == ("published", "notify", 100)
    assert [(a["number"], a["outcome"], a["reason"]) for a in body["attempt_log"]] == [
        (1, "retrying", "Busy."),
        (2, "published", None),
    ]


def test_submitted_text_fields_are_stored_as_sent(client: FlaskClient) -> None:
    headers = bearer(UserFactory())

    response = client.post(API, json={"url": "\x00" + VIDEO}, headers=headers)

    assert response.status_code == 422


def _private_upload(owner: object) -> tuple[int, int]:
    """An uploaded set of ``owner``'s, still private, playing one track; return both ids."""
    dj_set = DjSetFactory(
        source=SetSource.UPLOAD, video_id=None, channel=None, submitted_by=owner, is_private=True
    )
    track = TrackFactory()
    SetTrackFactory(dj_set=dj_set, track=track)
    db.session.flush()
    recount_set(dj_set.id)
    return dj_set.id, track.id


def test_publishing_an_uploaded_set_shows_it_to_everyone_and_counts_its_tracks(
    client: FlaskClient,
) -> None:
    owner = UserFactory()
    set_id, track_id = _private_upload(owner)
    headers = bearer(owner)
    assert client.get(f"/api/v1/sets/{set_id}").status_code == 404
    assert client.get(f"/api/v1/tracks/{track_id}").json["set_count"] == 0

    published = client.post(f"/api/v1/sets/{set_id}/publish", headers=headers)

    assert published.status_code == 200
    assert published.json["id"] == set_id
    assert client.get(f"/api/v1/sets/{set_id}").status_code == 200
    assert client.get(f"/api/v1/tracks/{track_id}").json["set_count"] == 1

    unpublished = client.post(f"/api/v1/sets/{set_id}/unpublish", headers=headers)

    assert unpublished.status_code == 200
    assert client.get(f"/api/v1/sets/{set_id}").status_code == 404
    assert client.get(f"/api/v1/sets/{set_id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/tracks/{track_id}").json["set_count"] == 0


def test_only_the_submitter_or_an_admin_may_publish_and_youtube_sets_stay_public(
    client: FlaskClient,
) -> None:
    owner = UserFactory()
    set_id, _ = _private_upload(owner)
    youtube = DjSetFactory(submitted_by=owner)
    stranger, admin, mine = bearer(UserFactory()), bearer(UserFactory(is_admin=True)), bearer(owner)

    assert client.post(f"/api/v1/sets/{set_id}/publish", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/sets/{set_id}/publish", headers=admin).status_code == 200
    refused = client.post(f"/api/v1/sets/{youtube.id}/unpublish", headers=mine)
    assert refused.status_code == 409
    assert "only an uploaded recording can be private" in refused.json["detail"]
    assert client.post("/api/v1/sets/999999/publish", headers=mine).status_code == 404
