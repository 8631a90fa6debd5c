"""An uploaded set is its submitter's (and admins') alone until published: nobody else sees it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks.auth.models import User
from set2tracks.extensions import db
from set2tracks.sets.models import Channel, DjSet, SetSource
from set2tracks.sets.services import browse_sets, get_visible_set, recount_set
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import Viewer
from tests.auth.helpers import sign_in
from tests.factories import DjSetFactory, SetTrackFactory, TrackFactory, UserFactory

SECRET = "Basement rehearsal"


@dataclass(frozen=True)
class Uploads:
    owner: User
    private: DjSet  # the owner's upload, not published yet
    public: DjSet  # someone's set everyone sees, on the same channel
    track: Track  # plays in both


@pytest.fixture
def uploads() -> Uploads:
    owner = UserFactory()
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
