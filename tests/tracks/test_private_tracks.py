"""Tracks only an operator's own library knows stay private: admins and set owners see them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks.auth.models import User
from set2tracks.extensions import db
from set2tracks.sets.models import DjSet, FoundBy
from set2tracks.sets.services import recount_set
from set2tracks.tracks.models import Track
from tests.auth.helpers import sign_in
from tests.factories import (
    DjSetFactory,
    LibraryFileFactory,
    SetTrackFactory,
    TrackFactory,
    UserFactory,
)

PROMO = "Untitled Promo Dub"


@dataclass(frozen=True)
class Catalogue:
    private: Track
    public: Track
    dj_set: DjSet  # plays the public track, then the private one
    owner: User  # submitted the set


@pytest.fixture
def catalogue() -> Catalogue:
    owner = UserFactory()
    private = TrackFactory(
        shazam_key=None,
        title=PROMO,
        artist="Secret Artist",
        search_document=f"{PROMO} Secret Artist",
        library_file=LibraryFileFactory(path="/srv/promos/secret_dub_v3.wav"),
        is_public=False,
    )
    public = TrackFactory(title="Glue", artist="Bicep", search_document="Glue Bicep")
    dj_set = DjSetFactory(submitted_by=owner)
    SetTrackFactory(dj_set=dj_set, track=public, position=1, start_seconds=0, end_seconds=300)
    SetTrackFactory(dj_set=dj_set, track=private, position=2, start_seconds=300, end_seconds=600)
    return Catalogue(private, public, dj_set, owner)


def titles_listed(client: FlaskClient, catalogue: Catalogue) -> dict[str, bool]:
    """Where a client finds the private track: list, search, detail, API, set tracklist."""
    track_id = catalogue.private.id
    set_id = catalogue.dj_set.id
    api_set = client.get(f"/api/v1/sets/{set_id}").json
    return {
        "page list": PROMO in client.get("/tracks").text,
        "page search": PROMO in client.get("/tracks", query_string={"q": "promo dub"}).text,
        "page detail": client.get(f"/tracks/{track_id}").status_code == 200,
        "api list": PROMO in str(client.get("/api/v1/tracks").json),
        "api search": PROMO in str(client.get("/api/v1/tracks", query_string={"q": "promo"}).json),
        "api detail": client.get(f"/api/v1/tracks/{track_id}").status_code == 200,
        "set page": PROMO in client.get(f"/sets/{set_id}").text,
        "set api": PROMO in str(api_set),
    }


NOWHERE = dict.fromkeys(
    [
        "page list",
        "page search",
        "page detail",
        "api list",
        "api search",
        "api detail",
        "set page",
        "set api",
    ],
    False,
)
EVERYWHERE = dict.fromkeys(NOWHERE, True)


def test_an_anonymous_visitor_never_sees_a_private_library_track(
    client: FlaskClient, catalogue: Catalogue
) -> None:
    assert titles_listed(client, catalogue) == NOWHERE
    # The public track is still listed, and the private one is an unidentified row.
    assert "Bicep - Glue" in client.get("/tracks").text
    tracklist = client.get(f"/api/v1/sets/{catalogue.dj_set.id}").json["tracklist"]
    assert [row["track"] and row["track"]["title"] for row in tracklist] == ["Glue", None]
    assert "ID - ID" in client.get(f"/sets/{catalogue.dj_set.id}").text
    assert client.get(f"/api/v1/tracks/{catalogue.private.id}").status_code == 404


def test_a_plain_user_never_sees_a_private_library_track(
    client: FlaskClient, catalogue: Catalogue
) -> None:
    sign_in(client, UserFactory())

    assert titles_listed(client, catalogue) == NOWHERE


def test_an_admin_sees_a_private_library_track_everywhere(
    client: FlaskClient, catalogue: Catalogue
) -> None:
    sign_in(client, UserFactory(is_admin=True))

    assert titles_listed(client, catalogue) == EVERYWHERE


def test_the_owner_of_a_set_sees_the_private_tracks_it_plays(
    client: FlaskClient, catalogue: Catalogue
) -> None:
    sign_in(client, catalogue.owner)

    assert titles_listed(client, catalogue) == EVERYWHERE


def test_hiding_a_track_changes_nothing_stored(client: FlaskClient, catalogue: Catalogue) -> None:
    client.get(f"/sets/{catalogue.dj_set.id}")
    sign_in(client, UserFactory(is_admin=True))

    tracklist = client.get(f"/api/v1/sets/{catalogue.dj_set.id}").json["tracklist"]

    assert [row["track"]["title"] for row in tracklist] == ["Glue", PROMO]


def test_flask_library_publish_makes_a_library_track_public(
    app: Flask, client: FlaskClient, catalogue: Catalogue
) -> None:
    runner = app.test_cli_runner()
    library_file_id = catalogue.private.library_file_id

    published = runner.invoke(args=["library", "publish", "--id", str(library_file_id)])

    assert published.exit_code == 0, published.output
    assert published.stdout.endswith("1 track(s) published\n")
    assert titles_listed(client, catalogue) == EVERYWHERE


def test_publish_by_folder_and_unknown_targets(
    app: Flask, client: FlaskClient, catalogue: Catalogue
) -> None:
    runner = app.test_cli_runner()

    published = runner.invoke(args=["library", "publish", "/srv/promos", "/srv/nothing"])

    assert published.exit_code == 1
    assert f"published #{catalogue.private.id} Secret Artist - {PROMO}" in published.stdout
    assert "not in the library: /srv/nothing" in published.stderr
    assert titles_listed(client, catalogue)["api detail"] is True


@dataclass(frozen=True)
class Counted:
    """A set's counters and its second row (the private track's) as one client sees them."""

    page_list: str
    page_detail: str
    api_list: tuple[int, float]
    api_detail: tuple[int, float]
    private_row: dict[str, object]


def counted(client: FlaskClient, catalogue: Catalogue) -> Counted:
    """Read the set's track count and coverage everywhere a client can, and its private row."""
    set_id = catalogue.dj_set.id
    listed = client.get("/api/v1/sets").json["items"]
    detail = client.get(f"/api/v1/sets/{set_id}").json
    page = client.get(f"/sets/{set_id}").text
    return Counted(
        page_list="1 tracks" if "· 1 tracks" in client.get("/sets").text else "other",
        page_detail="1 of 8 %" if "1 tracks identified\n  (8 % of the set)" in page else "other",
        api_list=(listed[0]["track_count"], round(listed[0]["coverage"], 3)),
        api_detail=(detail["track_count"], round(detail["coverage"], 3)),
        private_row={key: detail["tracklist"][1][key] for key in ("source", "confidence", "speed")},
    )


@pytest.fixture
def counted_catalogue(catalogue: Catalogue) -> Catalogue:
    """The catalogue with the library's match details stored and its set counters recounted."""
    private_row = catalogue.dj_set.tracklist[1]
    private_row.found_by, private_row.confidence, private_row.speed = FoundBy.LIBRARY, 0.97, 1.04
    # A stretch nobody identified, to compare the hidden row with.
    SetTrackFactory(
        dj_set=catalogue.dj_set,
        track=None,
        position=3,
        start_seconds=600,
        end_seconds=900,
        confidence=None,
        found_by=None,
    )
    recount_set(catalogue.dj_set.id)
    assert catalogue.dj_set.track_count == 2
    return catalogue


UNIDENTIFIED_ROW = {"source": None, "confidence": None, "speed": None}


@pytest.mark.parametrize("who", ["anonymous", "plain user"])
def test_a_hidden_library_match_leaves_no_trace_in_rows_or_counters(
    client: FlaskClient, counted_catalogue: Catalogue, who: str
) -> None:
    if who == "plain user":
        sign_in(client, UserFactory())

    seen = counted(client, counted_catalogue)
    tracklist = client.get(f"/api/v1/sets/{counted_catalogue.dj_set.id}").json["tracklist"]

    # The hidden row reads exactly like the stretch nobody identified.
    assert seen.private_row == UNIDENTIFIED_ROW
    assert {k: v for k, v in tracklist[1].items() if k not in ("position", "start", "end")} == {
        k: v for k, v in tracklist[2].items() if k not in ("position", "start", "end")
    }
    # Only the public track counts: 1 track, 300 s of 3600 s.
    assert (seen.page_list, seen.page_detail) == ("1 tracks", "1 of 8 %")
    assert seen.api_list == seen.api_detail == (1, round(300 / 3600, 3))


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_the_owner_and_admins_see_the_library_match_and_count_it(
    client: FlaskClient, counted_catalogue: Catalogue, who: str
) -> None:
    sign_in(client, counted_catalogue.owner if who == "owner" else UserFactory(is_admin=True))

    seen = counted(client, counted_catalogue)

    assert seen.private_row == {"source": "library", "confidence": 0.97, "speed": 1.04}
    assert (seen.page_list, seen.page_detail) == ("other", "other")
    assert "· 2 tracks" in client.get("/sets").text
    assert (
        "2 tracks identified\n  (17 % of the set)"
        in client.get(f"/sets/{counted_catalogue.dj_set.id}").text
    )
    assert seen.api_list == seen.api_detail == (2, round(600 / 3600, 3))


def test_publishing_a_library_track_counts_it_for_everyone(
    app: Flask, client: FlaskClient, counted_catalogue: Catalogue
) -> None:
    library_file_id = counted_catalogue.private.library_file_id
    app.test_cli_runner().invoke(args=["library", "publish", "--id", str(library_file_id)])

    seen = counted(client, counted_catalogue)

    assert seen.api_list == seen.api_detail == (2, round(600 / 3600, 3))
    assert seen.private_row == {"source": "library", "confidence": 0.97, "speed": 1.04}


def test_flask_library_publish_updates_the_stored_public_counters(
    app: Flask, counted_catalogue: Catalogue
) -> None:
    dj_set = counted_catalogue.dj_set
    assert (dj_set.public_track_count, round(dj_set.public_coverage, 3)) == (
        1,
        round(300 / 3600, 3),
    )
    library_file_id = counted_catalogue.private.library_file_id

    result = app.test_cli_runner().invoke(args=["library", "publish", "--id", str(library_file_id)])
    db.session.expire_all()

    assert result.exit_code == 0, result.output
    stored = db.session.get(DjSet, dj_set.id)
    assert stored is not None
    assert (stored.public_track_count, round(stored.public_coverage, 3)) == (
        2,
        round(600 / 3600, 3),
    )
