"""Track pages and ``/api/v1/tracks``."""

from __future__ import annotations

from flask.testing import FlaskClient

from set2tracks.extensions import db
from tests.factories import GenreFactory, LabelFactory, TrackFactory


def test_tracks_page_searches_title_artist_and_label(client: FlaskClient) -> None:
    TrackFactory(title="Glue", artist="Bicep", label=LabelFactory(name="Ninja Tune"))
    TrackFactory(title="Opus", artist="Eric Prydz")

    by_label = client.get("/tracks", query_string={"q": "ninja"}).text
    by_artist = client.get("/tracks", query_string={"q": "prydz"}).text

    assert "Bicep - Glue" in by_label
    assert "Opus" not in by_label
    assert "Eric Prydz - Opus" in by_artist


def test_track_page_shows_genres_and_label(client: FlaskClient) -> None:
    track = TrackFactory(title="Glue", label=LabelFactory(name="Ninja Tune"), release_year=2017)
    track.genres.append(GenreFactory(name="Electronic"))
    db.session.flush()

    page = client.get(f"/tracks/{track.id}")

    assert page.status_code == 200
    assert "Ninja Tune" in page.text
    assert "Electronic" in page.text
    assert "2017" in page.text


def test_missing_track_is_404(client: FlaskClient) -> None:
    assert client.get("/tracks/424242").status_code == 404
    assert client.get("/api/v1/tracks/424242").status_code == 404


def test_api_sorts_by_number_of_sets(client: FlaskClient) -> None:
    TrackFactory(title="Rare", set_count=1)
    TrackFactory(title="Anthem", set_count=40)

    body = client.get("/api/v1/tracks", query_string={"sort": "sets"}).json

    assert [item["title"] for item in body["items"]] == ["Anthem", "Rare"]
    assert body["next_cursor"] is None


def test_api_track_shape(client: FlaskClient) -> None:
    track = TrackFactory(title="Glue", artist="Bicep", spotify_id="2aJDlirz6v2a4HREki98cP")
    track.genres.append(GenreFactory(name="Electronic"))
    db.session.flush()

    body = client.get(f"/api/v1/tracks/{track.id}").json

    assert body["title"] == "Glue"
    assert body["genres"] == ["Electronic"]
    assert body["spotify_id"] == "2aJDlirz6v2a4HREki98cP"
    assert body["label"] is None
    assert "search_document" not in body
