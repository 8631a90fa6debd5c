"""An uploaded set is its submitter's (and admins') alone until published: nobody else sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks.auth.models import User
from set2tracks.extensions import db
from set2tracks.sets.models import Channel, DjSet, SetSource, SubmissionStatus
from set2tracks.sets.services import browse_sets, get_visible_set, recount_set
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import Viewer
from tests.auth.helpers import PASSWORD, csrf_token, make_user, sign_in
from tests.factories import (
    DjSetFactory,
    SetTrackFactory,
    SubmissionFactory,
    TrackFactory,
    UserFactory,
)
from tests.sets.submitting import bearer, post_file, submission

SECRET = "Basement rehearsal"


@dataclass(frozen=True)
class Uploads:
    owner: User
    private: DjSet  # the owner's upload, not published yet
    public: DjSet  # someone's set everyone sees, on the same channel
    track: Track  # plays in both


@pytest.fixture
def uploads() -> Uploads:
    owner = make_user()  # with a password, to sign in and delete the account
    track = TrackFactory(title="Glue", artist="Bicep")
    public = DjSetFactory(title="Open air")
    private = DjSetFactory(
        title=SECRET,
        source=SetSource.UPLOAD,
        video_id=None,
        channel=public.channel,  # uploads have none, but the rule may not depend on it
        search_document=f"{SECRET} rehearsal",
        submitted_by=owner,
        is_private=True,
    )
    for dj_set in (public, private):
        SetTrackFactory(dj_set=dj_set, track=track)
    for dj_set in (public, private):
        recount_set(dj_set.id)
    return Uploads(owner, private, public, track)


def seen_by(client: FlaskClient, uploads: Uploads) -> dict[str, bool]:
    """Where a client finds the private set: lists, searches, its page and its API."""
    set_id = uploads.private.id
    search = {"q": "basement"}
    return {
        "home": SECRET in client.get("/").text,
        "page list": SECRET in client.get("/sets").text,
        "page search": SECRET in client.get("/sets", query_string=search).text,
        "page": client.get(f"/sets/{set_id}").status_code == 200,
        "api list": SECRET in str(client.get("/api/v1/sets").json),
        "api search": SECRET in str(client.get("/api/v1/sets", query_string=search).json),
        "api": client.get(f"/api/v1/sets/{set_id}").status_code == 200,
    }


NOWHERE = dict.fromkeys(
    ["home", "page list", "page search", "page", "api list", "api search", "api"], False
)
EVERYWHERE = dict.fromkeys(NOWHERE, True)


def test_an_anonymous_visitor_never_sees_a_private_set(
    client: FlaskClient, uploads: Uploads
) -> None:
    assert seen_by(client, uploads) == NOWHERE
    assert "Open air" in client.get("/sets").text
    problem = client.get(f"/api/v1/sets/{uploads.private.id}")
    assert problem.status_code == 404
    assert problem.mimetype == "application/problem+json"
    # The same answer as for a set that never existed: nothing tells a private one is there.
    assert problem.json["detail"] == client.get("/api/v1/sets/424242").json["detail"]


def test_another_user_never_sees_a_private_set(client: FlaskClient, uploads: Uploads) -> None:
    sign_in(client, UserFactory())

    assert seen_by(client, uploads) == NOWHERE


def test_its_submitter_sees_a_private_set_everywhere(client: FlaskClient, uploads: Uploads) -> None:
    sign_in(client, uploads.owner)

    assert seen_by(client, uploads) == EVERYWHERE


def test_an_admin_sees_a_private_set_everywhere(client: FlaskClient, uploads: Uploads) -> None:
    sign_in(client, UserFactory(is_admin=True))

    assert seen_by(client, uploads) == EVERYWHERE


def test_the_services_apply_the_same_rule(app: Flask, uploads: Uploads) -> None:
    def titles(viewer: Viewer) -> set[str]:
        return {dj_set.title for dj_set in db.session.scalars(browse_sets(viewer=viewer)).unique()}

    owner = Viewer(user_id=uploads.owner.id)
    stranger = Viewer(user_id=UserFactory().id)

    assert titles(Viewer()) == titles(stranger) == {"Open air"}
    assert titles(owner) == titles(Viewer(is_admin=True)) == {"Open air", SECRET}
    assert get_visible_set(uploads.private.id, owner).title == SECRET


def test_private_sets_count_for_no_track_and_no_channel(
    client: FlaskClient, uploads: Uploads
) -> None:
    db.session.expire_all()
    track = db.session.get(Track, uploads.track.id)
    channel = db.session.get(Channel, uploads.public.channel_id)
    assert track is not None
    assert channel is not None

    assert (track.set_count, channel.set_count) == (1, 1)
    assert "Played in 1 sets." in client.get(f"/tracks/{track.id}").text
    assert client.get(f"/api/v1/tracks/{track.id}").json["set_count"] == 1


def test_publishing_a_private_set_makes_it_count(client: FlaskClient, uploads: Uploads) -> None:
    uploads.private.is_private = False
    recount_set(uploads.private.id)
    db.session.expire_all()

    assert db.session.get(Track, uploads.track.id).set_count == 2  # type: ignore[union-attr]
    assert db.session.get(Channel, uploads.public.channel_id).set_count == 2  # type: ignore[union-attr]
    assert seen_by(client, uploads) == EVERYWHERE


def test_deleting_an_account_takes_its_private_sets_uploads_and_active_work(
    app: Flask, client: FlaskClient, media: dict[str, Path], uploads: Uploads
) -> None:
    """A private upload is personal data: it must not outlive its owner's account."""
    owner_id = uploads.owner.id
    headers = bearer(uploads.owner)
    uploaded = post_file(client, media["mix.mp3"], headers=headers)
    assert uploaded.status_code == 202
    upload_path = Path(submission(uploaded.json["id"]).upload_path or "")
    gone = SubmissionFactory(
        user=db.session.get(User, owner_id),
        source=SetSource.UPLOAD,
        video_id=None,
        upload_path=str(upload_path.with_name("already-removed")),
        status=SubmissionStatus.FAILED,
    )
    youtube = DjSetFactory(
        submitted_by=db.session.get(User, owner_id),
        title="Rooftop",
        channel=uploads.public.channel,  # not counted yet: the deletion recounts the channel
    )
    private_id, youtube_id, channel_id = uploads.private.id, youtube.id, uploads.public.channel_id
    db.session.commit()
    browser = app.test_client()
    sign_in(browser, db.session.get(User, owner_id))
    db.session.commit()

    deleted = browser.post(
        "/account/delete", data={"delete-password": PASSWORD, "csrf_token": csrf_token(browser)}
    )

    assert deleted.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(DjSet, private_id) is None
    assert not upload_path.exists()
    left = submission(uploaded.json["id"])
    assert (left.user_id, left.status) == (None, SubmissionStatus.CANCELLED)
    assert submission(gone.id).status is SubmissionStatus.FAILED
    kept = db.session.get(DjSet, youtube_id)  # public: stays, unattributed
    assert kept is not None
    assert kept.submitted_by_id is None
    # The counters the public may read are what they were (the private set never counted).
    assert db.session.get(Track, uploads.track.id).set_count == 1  # type: ignore[union-attr]
    channel = db.session.get(Channel, channel_id)
    assert channel is not None
    assert channel.set_count == 2
