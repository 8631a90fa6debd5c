"""The set pages people browse."""

from __future__ import annotations

import json
import re

from flask.testing import FlaskClient

from tests.factories import ChannelFactory, DjSetFactory, SetTrackFactory, TrackFactory


def test_home_lists_published_sets(client: FlaskClient) -> None:
    DjSetFactory(title="Live at Fabric", channel=ChannelFactory(name="Fabric"))
    DjSetFactory(title="Unreleased draft", is_published=False)

    page = client.get("/")

    assert page.status_code == 200
    assert "Live at Fabric" in page.text
    assert "Fabric" in page.text
    assert "Unreleased draft" not in page.text


def test_empty_home_says_so(client: FlaskClient) -> None:
    assert "No set has been published yet" in client.get("/sets").text


def test_search_form_keeps_the_query_and_escapes_it(client: FlaskClient) -> None:
    page = client.get("/sets", query_string={"q": '<script>alert("x")</script>'})

    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text


def test_unknown_sort_falls_back_to_the_default(client: FlaskClient) -> None:
    DjSetFactory(title="Still listed")

    page = client.get("/sets", query_string={"sort": "password_hash"})

    assert page.status_code == 200
    assert "Still listed" in page.text


def test_pages_of_thirty(client: FlaskClient) -> None:
    for number in range(31):
        DjSetFactory(title=f"Set number {number:02d}")

    first = client.get("/sets").text
    second = client.get("/sets", query_string={"page": 2}).text

    assert first.count("Set number") == 30
    assert second.count("Set number") == 1
    assert "Page 2 of 2" in second


def test_set_page_shows_the_tracklist_with_unknown_stretches(client: FlaskClient) -> None:
    dj_set = DjSetFactory(title="Closing set")
    SetTrackFactory(
        dj_set=dj_set,
        position=0,
        track=TrackFactory(artist="Bicep", title="Glue"),
        start_seconds=0,
        end_seconds=330,
    )
    SetTrackFactory(dj_set=dj_set, position=1, track=None, start_seconds=330, end_seconds=3725)

    page = client.get(f"/sets/{dj_set.id}")

    assert page.status_code == 200
    assert "Bicep - Glue" in page.text
    assert "00:00 - 05:30" in page.text
    assert "05:30 - 1:02:05" in page.text
    assert "ID - ID" in page.text
    assert f"youtube-nocookie.com/embed/{dj_set.video_id}" in page.text


def test_set_titles_from_youtube_are_escaped(client: FlaskClient) -> None:
    dj_set = DjSetFactory(title='"><img src=x onerror=alert(1)>')

    page = client.get(f"/sets/{dj_set.id}")

    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_hidden_set_page_is_404(client: FlaskClient) -> None:
    dj_set = DjSetFactory(is_hidden=True)

    assert client.get(f"/sets/{dj_set.id}").status_code == 404


def test_page_numbers_out_of_range_are_404(client: FlaskClient) -> None:
    for page in ("0", "-3", "abc", "10001", "1" + "0" * 30, "9" * 5000, "٣"):
        assert client.get("/sets", query_string={"page": page}).status_code == 404, page
    assert client.get("/sets", query_string={"page": "1"}).status_code == 200


def test_set_page_describes_the_video_and_its_tracks_in_json_ld(client: FlaskClient) -> None:
    dj_set = DjSetFactory(title="</script><script>alert(1)</script>", duration_seconds=3725)
    SetTrackFactory(
        dj_set=dj_set,
        position=0,
        track=TrackFactory(artist="Bicep", title="Glue"),
        start_seconds=65,
        end_seconds=400,
    )

    page = client.get(f"/sets/{dj_set.id}")

    match = re.search(
        r'<script type="application/ld\+json" nonce="([^"]+)">(.*?)</script>', page.text, re.S
    )
    assert match is not None
    nonce, payload = match.groups()
    assert f"'nonce-{nonce}'" in page.headers["Content-Security-Policy"]
    assert "<script>alert" not in page.text
    document = json.loads(payload)
    assert document["@type"] == "VideoObject"
    assert document["name"] == "</script><script>alert(1)</script>"
    assert document["duration"] == "PT1H2M5S"
    assert document["hasPart"] == [
        {
            "@type": "Clip",
            "name": "Bicep - Glue",
            "startOffset": 65,
            "endOffset": 400,
            # SITE_URL is unset in the tests: the embedded profile's own address.
            "url": f"http://127.0.0.1:{client.application.config['PORT']}/sets/{dj_set.id}?t=65",
        }
    ]


def test_a_deep_link_starts_the_player_at_its_time(client: FlaskClient) -> None:
    dj_set = DjSetFactory(duration_seconds=3600)

    linked = client.get(f"/sets/{dj_set.id}?t=65").text
    beyond = client.get(f"/sets/{dj_set.id}?t=99999").text
    garbage = client.get(f"/sets/{dj_set.id}?t=abc").text

    assert f"embed/{dj_set.video_id}?start=65" in linked
    assert f"embed/{dj_set.video_id}?start" not in beyond
    assert f"embed/{dj_set.video_id}?start" not in garbage
