"""Every sort of the set listings, page and API, on sets where any other order differs.

The sets are created in the order Nimbus, Aurora, Borealis, Cascade, so their ids give
Cascade, Borealis, Aurora, Nimbus newest first: no expected order below is an id order, no
two are alike, and none reads the same backwards. Nimbus (an upload with no dates and no
channel) ends every order: the nulls go last. Aurora and Cascade share a channel, so the
"popular" sort ties on followers and the newer set (Cascade) must come first.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from set2tracks.sets.models import SetSource
from tests.factories import ChannelFactory, DjSetFactory

ORDERS = {
    "youtube": ["Borealis", "Cascade", "Aurora", "Nimbus"],
    "added": ["Aurora", "Cascade", "Borealis", "Nimbus"],
    "popular": ["Cascade", "Aurora", "Borealis", "Nimbus"],
}
DEFAULT = "added"


def _day(year: int, month: int = 1) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


@pytest.fixture
def sets() -> None:
    big = ChannelFactory(follower_count=90_000)
    small = ChannelFactory(follower_count=10)
    DjSetFactory(
        title="Nimbus",
        source=SetSource.UPLOAD,
        video_id=None,
        channel=None,
        youtube_published_at=None,
        published_at=None,
    )
    DjSetFactory(
        title="Aurora", channel=big, youtube_published_at=_day(2021), published_at=_day(2026, 3)
    )
    DjSetFactory(
        title="Borealis",
        channel=small,
        youtube_published_at=_day(2025),
        published_at=_day(2026, 1),
    )
    DjSetFactory(
        title="Cascade", channel=big, youtube_published_at=_day(2023), published_at=_day(2026, 2)
    )


def _listed(page: str) -> list[str]:
    titles = re.findall(r"<strong>(Nimbus|Aurora|Borealis|Cascade)</strong>", page)
    assert len(titles) == 4
    return titles


@pytest.mark.usefixtures("sets")
@pytest.mark.parametrize("sort", ORDERS)
def test_sets_page_lists_in_the_chosen_order(client: FlaskClient, sort: str) -> None:
    page = client.get("/sets", query_string={"sort": sort})

    assert page.status_code == 200
    assert _listed(page.text) == ORDERS[sort]


@pytest.mark.usefixtures("sets")
@pytest.mark.parametrize("sort", ORDERS)
def test_api_lists_sets_in_the_chosen_order_across_pages(client: FlaskClient, sort: str) -> None:
    first = client.get("/api/v1/sets", query_string={"sort": sort, "limit": 3}).json
    second = client.get(
        "/api/v1/sets", query_string={"sort": sort, "limit": 3, "cursor": first["next_cursor"]}
    ).json

    assert [item["title"] for item in first["items"] + second["items"]] == ORDERS[sort]
    assert second["next_cursor"] is None


@pytest.mark.usefixtures("sets")
def test_without_a_sort_sets_are_listed_by_date_added(client: FlaskClient) -> None:
    home = client.get("/").text
    unknown = client.get("/sets", query_string={"sort": "password_hash"}).text
    api = client.get("/api/v1/sets").json

    assert _listed(home) == ORDERS[DEFAULT]
    assert _listed(unknown) == ORDERS[DEFAULT]
    assert [item["title"] for item in api["items"]] == ORDERS[DEFAULT]
