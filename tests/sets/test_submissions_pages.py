"""The submission pages: submitting, following progress, the admin queue, publishing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks import create_app
from set2tracks.auth.models import User
from set2tracks.errors import Conflict
from set2tracks.extensions import db
from set2tracks.sets.models import DjSet, SetSource, SubmissionAttempt, SubmissionStatus
from set2tracks.sets.submissions import CANCELLED, RETRIED, retry_submission
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
    WatchedBody,
    multipart_upload,
    post_file,
    stored_uploads,
    submission,
)

VIDEO = "dQw4w9WgXcQ"


def signed_in(app: Flask, **user: object) -> tuple[FlaskClient, User]:
    client = app.test_client()
    account = UserFactory(**user)
    sign_in(client, account)
    db.session.commit()
    return client, account


def flashes(page: str) -> list[str]:
    return re.findall(r"<p>([^<]+)</p>", page.split('class="flashes"', 1)[-1].split("</div>")[0])


def test_the_submit_page_offers_an_upload_and_a_link(app: Flask) -> None:
    client, _ = signed_in(app)

    page = client.get("/submit")

    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert 'action="/submit/upload"' in page.text
    assert 'type="file"' in page.text
    assert 'name="file"' in page.text
    assert 'name="url"' in page.text
    assert page.text.count('name="csrf_token"') >= 3  # both forms and sign-out
    # "Email me when ready" is on by default, as the account's preference says.
    assert page.text.count('checked id="') + page.text.count("checked>") >= 1
    assert "10 sets an hour, with 3 being processed at once" in page.text


def test_anonymous_visitors_are_sent_to_sign_in(app: Flask, media: dict[str, Path]) -> None:
    client = app.test_client()
    before = stored_uploads(app)

    assert "/login" in client.get("/submit").headers["Location"]
    assert "/login" in client.get("/submissions").headers["Location"]
    assert "/login" in post_file(client, media["mix.mp3"], to="/submit/upload").headers["Location"]
    assert stored_uploads(app) == before


def test_a_link_is_submitted_and_its_page_shown(app: Flask) -> None:
    client, _user = signed_in(app)

    response = client.post(
        "/submit", data={"url": f"https://youtu.be/{VIDEO}", "csrf_token": csrf_token(client)}
    )

    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert "Submitted. This page follows its progress." in page.text
    assert VIDEO in page.text
    assert "queued" in page.text
    again = client.post("/submit", data={"url": VIDEO, "csrf_token": csrf_token(client)})
    assert again.headers["Location"] == response.headers["Location"]
    assert "You already submitted this" in client.get(again.headers["Location"]).text


def test_a_link_someone_else_submitted_leads_to_my_submissions(app: Flask) -> None:
    SubmissionFactory(video_id=VIDEO, status=SubmissionStatus.RUNNING)
    client, _ = signed_in(app)
    token = csrf_token(client)

    response = client.post("/submit", data={"url": VIDEO, "csrf_token": token})

    assert response.headers["Location"] == "/submissions"
    assert "Someone already submitted this video" in client.get("/submissions").text


def test_a_link_to_a_published_set_leads_to_the_set(app: Flask) -> None:
    dj_set = DjSetFactory(video_id=VIDEO)
    client, _ = signed_in(app)

    response = client.post("/submit", data={"url": VIDEO, "csrf_token": csrf_token(client)})

    assert response.headers["Location"] == f"/sets/{dj_set.id}"


def test_a_bad_link_is_a_form_message(app: Flask) -> None:
    client, _ = signed_in(app)

    response = client.post(
        "/submit", data={"url": "https://vimeo.com/1", "csrf_token": csrf_token(client)}
    )
    empty = client.post("/submit", data={"url": "", "csrf_token": csrf_token(client)})

    assert response.status_code == 422
    assert "Paste a YouTube link (youtube.com/watch?v=" in response.text
    assert 'value="https://vimeo.com/1"' in response.text  # kept for correcting
    assert empty.status_code == 400
    assert "Paste a YouTube link or an 11-character video id." in empty.text


def test_over_quota_is_a_form_message_with_retry_after(app: Flask) -> None:
    client, user = signed_in(app)
    for _ in range(3):
        SubmissionFactory(user=user, status=SubmissionStatus.RUNNING)
    db.session.commit()

    response = client.post("/submit", data={"url": VIDEO, "csrf_token": csrf_token(client)})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert "You have 3 sets being processed" in response.text


def test_an_upload_is_submitted_and_its_page_shown(app: Flask, media: dict[str, Path]) -> None:
    client, user = signed_in(app)

    response = post_file(
        client, media["mix.mp3"], to="/submit/upload", csrf_token=csrf_token(client), notify="y"
    )

    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert "mix.mp3" in page.text
    assert "you will get an email when it is done" in page.text
    submission_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert submission(submission_id).user_id == user.id


@pytest.mark.parametrize(("sent", "emailed"), [("false", False), ("", False), ("Y", True)])
def test_the_upload_page_reads_notify_as_the_api_does(
    app: Flask, media: dict[str, Path], sent: str, emailed: bool
) -> None:
    """ "false" asked for an email on the page (any non-empty text did) and not on the API."""
    client, _ = signed_in(app)

    response = post_file(
        client, media["mix.mp3"], to="/submit/upload", csrf_token=csrf_token(client), notify=sent
    )

    assert response.status_code == 303
    submission_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert submission(submission_id).notify_by_email is emailed


def test_refused_uploads_are_form_messages_and_leave_nothing(
    app: Flask, media: dict[str, Path]
) -> None:
    client, _ = signed_in(app)
    before = stored_uploads(app)
    token = csrf_token(client)

    bomb = post_file(client, media["bomb.flac"], to="/submit/upload", csrf_token=token)
    picture = post_file(client, media["cover.mp3"], to="/submit/upload", csrf_token=token)
    nothing = client.post(
        "/submit/upload",
        data={"csrf_token": token, "file": (b"", "")},
        content_type="multipart/form-data",
    )

    assert bomb.status_code == 422
    assert "This recording lasts 7 h 00 min: a set may last at most 6 h 00 min." in bomb.text
    assert picture.status_code == 422
    assert "This file cannot be used:" in picture.text
    assert nothing.status_code == 422
    assert "Choose the recording to upload." in nothing.text
    assert stored_uploads(app) == before


def test_an_upload_over_the_limit_is_a_form_message(backends: Backends, tmp_path: Path) -> None:
    small = create_app(base_config(backends, tmp_path, UPLOAD_MAX_BYTES=100_000))
    client, _ = signed_in(small)
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + b"\0" * 150_000)

    response = post_file(client, big, to="/submit/upload", csrf_token=csrf_token(client))

    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "This file is too large: uploads may be at most" in response.text
    assert "<h1>Submit a set</h1>" in response.text
    assert stored_uploads(small) == set()


def test_an_upload_without_its_csrf_token_is_refused_and_leaves_nothing(
    app: Flask, media: dict[str, Path]
) -> None:
    client, _ = signed_in(app)
    before = stored_uploads(app)

    forged = post_file(client, media["mix.mp3"], to="/submit/upload")
    wrong = post_file(client, media["mix.mp3"], to="/submit/upload", csrf_token="forged")

    assert forged.status_code == wrong.status_code == 400
    assert stored_uploads(app) == before


def test_a_forged_upload_is_refused_before_its_file_is_stored(app: Flask) -> None:
    """A cross-site form makes a victim's browser send up to UPLOAD_MAX_BYTES: its token,
    the form's first field, is checked before a byte of the file is written or read on."""
    client, _ = signed_in(app)
    before = stored_uploads(app)
    head = (
        b'--x\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nforged\r\n'
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="mix.mp3"\r\n\r\n'
    )
    payload = head + b"\xff" * 5_000_000 + b"\r\n--x--\r\n"
    body = WatchedBody(payload)

    response = client.post(
        "/submit/upload",
        input_stream=body,
        content_length=len(payload),
        content_type="multipart/form-data; boundary=x",
    )

    assert response.status_code == 400
    assert stored_uploads(app) == before
    assert body.bytes_read < 1_000_000  # refused at the token, not after 5 MB on disk


def test_the_csrf_token_must_come_before_the_file_or_in_the_header(
    app: Flask, media: dict[str, Path]
) -> None:
    client, _ = signed_in(app)
    token = csrf_token(client)
    before = stored_uploads(app)
    payload, content_type = multipart_upload(media["mix.mp3"])
    after_the_file = payload.replace(
        b"--x--\r\n",
        b'--x\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + token.encode()
        + b"\r\n--x--\r\n",
    )

    late = client.post("/submit/upload", data=after_the_file, content_type=content_type)
    refused = stored_uploads(app)
    in_header = client.post(
        "/submit/upload",
        data=payload,
        content_type=content_type,
        headers={"X-CSRFToken": token},
    )

    assert late.status_code == 400
    assert "send the csrf_token field before the file" in late.text
    assert refused == before
    assert in_header.status_code == 303


def test_the_submit_page_sends_the_csrf_token_before_the_file(app: Flask) -> None:
    client, _ = signed_in(app)

    page = client.get("/submit").text
    upload_form = page[page.index('enctype="multipart/form-data"') :]

    assert upload_form.index('name="csrf_token"') < upload_form.index('name="file"')


def test_my_submissions_lists_mine_with_live_progress(app: Flask) -> None:
    client, user = signed_in(app)
    running = SubmissionFactory(
        user=user, status=SubmissionStatus.RUNNING, stage="recognize", progress=42
    )
    SubmissionFactory(user=user, status=SubmissionStatus.DISCARDED, reason="Not a set.")
    theirs = SubmissionFactory(video_id="theirs00001")
    db.session.commit()

    page = client.get("/submissions")

    assert page.status_code == 200
    assert running.video_id in page.text
    assert "theirs00001" not in page.text
    assert 'value="42"' in page.text
    assert "recognize" in page.text
    assert "Not a set." in page.text
    assert f'data-submission-url="/api/v1/submissions/{running.id}"' in page.text
    assert page.text.count("data-live") == 1  # only the active one is polled
    assert '<script src="/static/js/submissions.js" defer></script>' in page.text
    assert client.get(f"/submissions/{theirs.id}").status_code == 404


def test_the_polling_script_is_served_by_the_app(client: FlaskClient) -> None:
    script = client.get("/static/js/submissions.js")

    assert script.status_code == 200
    assert "javascript" in script.mimetype
    assert "innerHTML" not in script.text


def test_a_submission_page_lists_its_attempts(app: Flask) -> None:
    client, user = signed_in(app)
    mine = SubmissionFactory(user=user, status=SubmissionStatus.FAILED, attempts=2)
    db.session.add_all(
        [
            SubmissionAttempt(
                submission=mine, number=1, outcome="retrying", stage="decode", reason="Busy."
            ),
            SubmissionAttempt(
                submission=mine, number=2, outcome="failed", stage="decode", reason="Still busy."
            ),
        ]
    )
    db.session.commit()

    page = client.get(f"/submissions/{mine.id}").text

    assert "Busy." in page
    assert "Still busy." in page
    assert page.count("<td>decode</td>") == 2


def _queue(app: Flask) -> tuple[FlaskClient, dict[str, int]]:
    client, _ = signed_in(app, is_admin=True)
    ids = {
        "queued": SubmissionFactory(status=SubmissionStatus.QUEUED).id,
        "running": SubmissionFactory(status=SubmissionStatus.RUNNING, stage="decode").id,
        "failed": SubmissionFactory(status=SubmissionStatus.FAILED, reason="Timed out.").id,
        "discarded": SubmissionFactory(status=SubmissionStatus.DISCARDED).id,
    }
    db.session.commit()
    return client, ids


def test_the_admin_queue_has_status_tabs_with_counts(app: Flask) -> None:
    client, ids = _queue(app)

    everything = client.get("/admin/submissions").text
    failed = client.get("/admin/submissions", query_string={"status": "failed"}).text

    assert "all (4)" in everything
    assert "failed (1)" in everything
    assert "published (0)" in everything
    assert all(f'/submissions/{number}"' in everything for number in ids.values())
    assert f'/submissions/{ids["failed"]}"' in failed
    assert f'/submissions/{ids["running"]}"' not in failed
    assert "Timed out." in failed
    assert f'action="/admin/submissions/{ids["failed"]}/retry"' in failed
    assert f'action="/admin/submissions/{ids["running"]}/cancel"' in everything
    assert client.get("/admin/submissions", query_string={"status": "nope"}).status_code == 200


def test_people_who_are_not_admins_get_no_queue(app: Flask) -> None:
    client, _ = signed_in(app)
    queued = SubmissionFactory()
    db.session.commit()

    assert client.get("/admin/submissions").status_code == 403
    response = client.post(
        f"/admin/submissions/{queued.id}/cancel", data={"csrf_token": csrf_token(client)}
    )
    assert response.status_code == 403
    assert submission(queued.id).status is SubmissionStatus.QUEUED


def test_an_admin_cancels_and_retries(app: Flask) -> None:
    client, ids = _queue(app)
    token = csrf_token(client)  # read off a page, which would show (and use up) messages

    cancelled = client.post(
        f"/admin/submissions/{ids['running']}/cancel",
        data={"csrf_token": token, "status": "running"},
    )
    client.post(f"/admin/submissions/{ids['failed']}/retry", data={"csrf_token": token})

    assert cancelled.status_code == 303
    assert cancelled.headers["Location"] == "/admin/submissions?status=running"
    stopped = submission(ids["running"])
    assert (stopped.status, stopped.reason) == (SubmissionStatus.CANCELLED, CANCELLED)
    assert stopped.finished_at is not None
    again = submission(ids["failed"])
    assert again.status is SubmissionStatus.QUEUED
    assert again.reason != "Timed out."
    page = client.get("/admin/submissions").text
    assert f"Submission {ids['running']} cancelled." in page
    assert f"Submission {ids['failed']} queued again." in page


def test_a_retried_upload_is_queued_again_with_its_attempts_kept(
    app: Flask, tmp_path: Path
) -> None:
    client, _ = signed_in(app, is_admin=True)
    kept = tmp_path / "kept-upload"
    kept.write_bytes(b"audio")
    failed = SubmissionFactory(
        source=SetSource.UPLOAD,
        video_id=None,
        upload_path=str(kept),
        status=SubmissionStatus.FAILED,
        attempts=4,
        stage="recognize",
        progress=60,
    )
    gone = SubmissionFactory(
        source=SetSource.UPLOAD,
        video_id=None,
        upload_path=str(tmp_path / "removed"),
        status=SubmissionStatus.DISCARDED,
    )
    db.session.commit()

    client.post(f"/admin/submissions/{failed.id}/retry", data={"csrf_token": csrf_token(client)})
    refused = client.post(
        f"/admin/submissions/{gone.id}/retry", data={"csrf_token": csrf_token(client)}
    )

    again = submission(failed.id)
    assert (again.status, again.stage, again.progress, again.reason) == (
        SubmissionStatus.QUEUED,
        None,
        0,
        RETRIED,
    )
    assert again.attempts == 4  # one more run, not a new budget
    assert again.job_id is not None  # queued for a worker
    assert submission(gone.id).status is SubmissionStatus.DISCARDED
    assert "The uploaded file is gone" in client.get(refused.headers["Location"]).text


def test_queue_actions_that_do_not_apply_say_why(app: Flask) -> None:
    client, ids = _queue(app)

    client.post(
        f"/admin/submissions/{ids['queued']}/retry", data={"csrf_token": csrf_token(client)}
    )
    page = client.get("/admin/submissions").text

    assert "Only failed, discarded or cancelled submissions can be retried" in page
    assert submission(ids["queued"]).status is SubmissionStatus.QUEUED
    missing = client.post(
        "/admin/submissions/999999/cancel", data={"csrf_token": csrf_token(client)}
    )
    assert missing.status_code == 404


def test_a_youtube_submission_whose_video_was_published_meanwhile_is_not_retried(
    app: Flask,
) -> None:
    """A retry would make a second set of a video that already has one."""
    failed = SubmissionFactory(video_id=VIDEO, status=SubmissionStatus.FAILED)
    published = DjSetFactory(video_id=VIDEO)
    client, _ = signed_in(app, is_admin=True)

    with pytest.raises(Conflict) as refused:
        retry_submission(failed.id)
    client.post(f"/admin/submissions/{failed.id}/retry", data={"csrf_token": csrf_token(client)})

    assert refused.value.status == 409
    assert flashes(client.get("/admin/submissions").text) == [
        f"Submission {failed.id}: This video&#39;s set is already published (set"
        f" {published.id}): there is nothing to retry."
    ]
    assert submission(failed.id).status is SubmissionStatus.FAILED


def test_queue_actions_need_the_csrf_token(app: Flask) -> None:
    client, ids = _queue(app)

    forged = client.post(f"/admin/submissions/{ids['running']}/cancel")
    wrong = client.post(f"/admin/submissions/{ids['failed']}/retry", data={"csrf_token": "x"})
    by_get = client.get(f"/admin/submissions/{ids['running']}/cancel")

    assert forged.status_code == wrong.status_code == 400
    assert by_get.status_code == 405
    assert submission(ids["running"]).status is SubmissionStatus.RUNNING
    assert submission(ids["failed"]).status is SubmissionStatus.FAILED


def _uploaded_set(owner_id: int, *, private: bool) -> tuple[DjSet, int]:
    dj_set = DjSetFactory(
        source=SetSource.UPLOAD,
        video_id=None,
        channel=None,
        submitted_by_id=owner_id,
        is_private=private,
        title="Basement tape",
    )
    track = TrackFactory()
    SetTrackFactory(dj_set=dj_set, track=track)
    db.session.commit()
    return dj_set, track.id


def test_the_owner_publishes_and_unpublishes_an_uploaded_set(app: Flask) -> None:
    client, owner = signed_in(app)
    dj_set, _ = _uploaded_set(owner.id, private=True)

    page = client.get(f"/sets/{dj_set.id}").text
    published = client.post(f"/sets/{dj_set.id}/publish", data={"csrf_token": csrf_token(client)})

    assert "Private: only you and the administrators can see this set." in page
    assert f'action="/sets/{dj_set.id}/publish"' in page
    assert published.status_code == 303
    db.session.expire_all()
    assert db.session.get(DjSet, dj_set.id).is_private is False  # type: ignore[union-attr]
    page = client.get(published.headers["Location"]).text
    assert "This set is public: everyone can find it now." in page
    assert f'action="/sets/{dj_set.id}/unpublish"' in page
    client.post(f"/sets/{dj_set.id}/unpublish", data={"csrf_token": csrf_token(client)})
    db.session.expire_all()
    assert db.session.get(DjSet, dj_set.id).is_private is True  # type: ignore[union-attr]


def test_others_see_no_publishing_buttons_and_cannot_publish(app: Flask) -> None:
    owner = UserFactory()
    dj_set, _ = _uploaded_set(owner.id, private=False)
    youtube = DjSetFactory(submitted_by=owner)
    client, _ = signed_in(app)

    page = client.get(f"/sets/{dj_set.id}").text
    response = client.post(f"/sets/{dj_set.id}/unpublish", data={"csrf_token": csrf_token(client)})

    assert "/unpublish" not in page
    assert response.status_code == 404
    assert db.session.get(DjSet, dj_set.id).is_private is False  # type: ignore[union-attr]
    owner_client = app.test_client()
    sign_in(owner_client, owner)
    db.session.commit()
    assert "/unpublish" not in owner_client.get(f"/sets/{youtube.id}").text
    refused = owner_client.post(
        f"/sets/{youtube.id}/unpublish", data={"csrf_token": csrf_token(owner_client)}
    )
    assert refused.status_code == 409


def test_the_nav_leads_to_submitting_and_the_queue(app: Flask) -> None:
    client, _ = signed_in(app, is_admin=True)

    page = client.get("/").text

    assert 'href="/submit"' in page
    assert 'href="/submissions"' in page
    assert 'href="/admin/submissions"' in page
