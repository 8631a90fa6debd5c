"""``/api/v1/sets``."""

from __future__ import annotations

from flask.testing import FlaskClient

from set2tracks.sets.models import FoundBy
from tests.factories import DjSetFactory, LabelFactory, SetTrackFactory, TrackFactory


def test_list_is_paginated_with_an_opaque_cursor(client: FlaskClient) -> None:
    for number in range(5):
        DjSetFactory(title=f"Set {number}")

    first = client.get("/api/v1/sets", query_string={"limit": 3}).json
    second = client.get(
        "/api/v1/sets", query_string={"limit": 3, "cursor": first["next_cursor"]}
    ).json

    assert len(first["items"]) == 3
    assert first["next_cursor"]
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    titles = {item["title"] for item in first["items"] + second["items"]}
    assert titles == {f"Set {number}" for number in range(5)}


def test_set_detail_has_the_tracklist_shape(client: FlaskClient) -> None:
    dj_set = DjSetFactory(title="Peak time")
    track = TrackFactory(title="Glue", artist="Bicep", label=LabelFactory(name="Ninja Tune"))
    SetTrackFactory(
        dj_set=dj_set, position=0, track=track, start_seconds=0, end_seconds=300, speed=1.04
    )
    SetTrackFactory(
        dj_set=dj_set, position=1, track=None, start_seconds=300, end_seconds=360, found_by=None
    )

    body = client.get(f"/api/v1/sets/{dj_set.id}").json

    assert body["title"] == "Peak time"
    assert body["tracklist"][0] == {
        "position": 0,
        "start": 0.0,
        "end": 300.0,
        "confidence": 0.9,
        "speed": 1.04,
        "source": FoundBy.SHAZAM.value,
        "track": body["tracklist"][0]["track"],
    }
    assert body["tracklist"][0]["track"]["label"] == "Ninja Tune"
    assert body["tracklist"][1]["track"] is None


def test_invalid_input_is_422_problem_json_with_field_errors(client: FlaskClient) -> None:
    response = client.get("/api/v1/sets", query_string={"limit": 1000, "sort": "id"})

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]["query"]) == {"limit", "sort"}


def test_forged_cursor_is_422(client: FlaskClient) -> None:
    for cursor in ("not-base64!", "eyJvIjogLTF9", "eyJ4IjogMX0"):
        response = client.get("/api/v1/sets", query_string={"cursor": cursor})

        assert response.status_code == 422
        assert response.json["errors"] == {"cursor": ["invalid"]}


def test_unpublished_set_is_404_problem_json(client: FlaskClient) -> None:
    dj_set = DjSetFactory(is_published=False)

    response = client.get(f"/api/v1/sets/{dj_set.id}")

    assert response.status_code == 404
    assert response.json["detail"] == "This set does not exist or is not published."
