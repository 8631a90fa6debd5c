"""Track pages and ``/api/v1/tracks``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
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


# Created in the order Willow, Xylem, Yarrow, Zinnia, so their ids give Zinnia, Yarrow, Xylem,
# Willow newest first: no expected order is an id order, no two are alike, and none reads the
# same backwards. Each sort's missing values (no release date, no popularity) go last, and
# Willow and Yarrow tie on sets, where the newer track (Yarrow) must come first.
TRACK_ORDERS = {
    "newest": ["Yarrow", "Willow", "Zinnia", "Xylem"],
    "released": ["Yarrow", "Zinnia", "Xylem", "Willow"],
    "sets": ["Xylem", "Yarrow", "Willow", "Zinnia"],
    "popularity": ["Yarrow", "Zinnia", "Willow", "Xylem"],
}
DEFAULT_TRACK_ORDER = TRACK_ORDERS["newest"]


@pytest.fixture
def tracks() -> None:
    def added(day: int) -> datetime:
        return datetime(2026, 1, day, tzinfo=UTC)

    TrackFactory(title="Willow", created_at=added(3), set_count=5, popularity=30)
    TrackFactory(title="Xylem", created_at=added(1), release_date=date(2019, 5, 1), set_count=40)
    TrackFactory(
        title="Yarrow",
        created_at=added(4),
        release_date=date(2024, 5, 1),
        set_count=5,
        popularity=80,
    )
    TrackFactory(
        title="Zinnia",
        created_at=added(2),
        release_date=date(2021, 5, 1),
        set_count=1,
        popularity=50,
    )


def _listed_tracks(page: str) -> list[str]:
    titles = re.findall(r" - (Willow|Xylem|Yarrow|Zinnia)</a>", page)
    assert len(titles) == 4
    return titles


@pytest.mark.usefixtures("tracks")
@pytest.mark.parametrize("sort", TRACK_ORDERS)
def test_tracks_page_lists_in_the_chosen_order(client: FlaskClient, sort: str) -> None:
    page = client.get("/tracks", query_string={"sort": sort})

    assert page.status_code == 200
    assert _listed_tracks(page.text) == TRACK_ORDERS[sort]


@pytest.mark.usefixtures("tracks")
@pytest.mark.parametrize("sort", TRACK_ORDERS)
def test_api_lists_tracks_in_the_chosen_order_across_pages(client: FlaskClient, sort: str) -> None:
    first = client.get("/api/v1/tracks", query_string={"sort": sort, "limit": 3}).json
    second = client.get(
        "/api/v1/tracks", query_string={"sort": sort, "limit": 3, "cursor": first["next_cursor"]}
    ).json

    assert [item["title"] for item in first["items"] + second["items"]] == TRACK_ORDERS[sort]
    assert second["next_cursor"] is None


@pytest.mark.usefixtures("tracks")
def test_without_a_sort_tracks_are_listed_newest_first(client: FlaskClient) -> None:
    page = client.get("/tracks").text
    unknown = client.get("/tracks", query_string={"sort": "password_hash"}).text
    api = client.get("/api/v1/tracks").json

    assert _listed_tracks(page) == DEFAULT_TRACK_ORDER
    assert _listed_tracks(unknown) == DEFAULT_TRACK_ORDER
    assert [item["title"] for item in api["items"]] == DEFAULT_TRACK_ORDER


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
