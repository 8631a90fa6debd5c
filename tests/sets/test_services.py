"""Browsing sets and keeping their counters true."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from set2tracks.errors import NotFound
from set2tracks.extensions import db
from set2tracks.sets import services
from set2tracks.sets.models import Channel, DjSet
from set2tracks.tracks.models import Track
from tests.factories import ChannelFactory, DjSetFactory, SetTrackFactory, TrackFactory


def _titles(query: object) -> list[str]:
    return [dj_set.title for dj_set in db.session.scalars(query).unique()]  # type: ignore[arg-type]


def test_only_published_visible_sets_are_browsable(app: Flask) -> None:
    DjSetFactory(title="Live at Fabric")
    DjSetFactory(title="Draft", is_published=False)
    DjSetFactory(title="Taken down", is_hidden=True)

    assert _titles(services.browse_sets()) == ["Live at Fabric"]


def test_hidden_and_unpublished_sets_are_not_found_by_id(app: Flask) -> None:
    hidden = DjSetFactory(is_hidden=True)
    draft = DjSetFactory(is_published=False)

    for dj_set in (hidden, draft):
        with pytest.raises(NotFound):
            services.get_visible_set(dj_set.id)


def test_sorts(app: Flask) -> None:
    small = ChannelFactory(follower_count=10)
    big = ChannelFactory(follower_count=90_000)
    DjSetFactory(
        title="old upload, added last",
        channel=small,
        youtube_published_at=datetime(2020, 1, 1, tzinfo=UTC),
        published_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    DjSetFactory(
        title="new upload, added first",
        channel=big,
        youtube_published_at=datetime(2026, 1, 1, tzinfo=UTC),
        published_at=datetime(2026, 2, 1, tzinfo=UTC),
    )

    assert _titles(services.browse_sets(sort="youtube"))[0] == "new upload, added first"
    assert _titles(services.browse_sets(sort="added"))[0] == "old upload, added last"
    assert _titles(services.browse_sets(sort="popular"))[0] == "new upload, added first"


def test_search_matches_title_and_channel_name(app: Flask) -> None:
    DjSetFactory(title="Boiler Room Berlin", channel=ChannelFactory(name="Boiler Room"))
    DjSetFactory(title="Sunrise session", channel=ChannelFactory(name="Cercle"))
    DjSetFactory(title="Warehouse rave", channel=ChannelFactory(name="Mixmag"))

    assert _titles(services.browse_sets("berlin")) == ["Boiler Room Berlin"]
    assert _titles(services.browse_sets("CERCLE")) == ["Sunrise session"]
    assert _titles(services.browse_sets("boiler room")) == ["Boiler Room Berlin"]
    assert _titles(services.browse_sets("room -berlin")) == []
    assert _titles(services.browse_sets("techno")) == []


def test_search_treats_wildcards_and_quotes_as_text(app: Flask) -> None:
    # Search covers channel names too: a numbered factory name ("Channel 100") would match.
    channel = ChannelFactory(name="Crate Diggers")
    DjSetFactory(title="100% vinyl", channel=channel)
    DjSetFactory(title="All digital", channel=channel)

    assert _titles(services.browse_sets("_")) == []
    assert _titles(services.browse_sets("' OR 1=1 --")) == []
    assert _titles(services.browse_sets('"100')) == ["100% vinyl"]


def test_recount_counts_distinct_identified_tracks_and_coverage(app: Flask) -> None:
    channel = ChannelFactory()
    dj_set = DjSetFactory(channel=channel, duration_seconds=1000)
    first, second = TrackFactory(), TrackFactory()
    SetTrackFactory(dj_set=dj_set, position=0, track=first, start_seconds=0, end_seconds=300)
    SetTrackFactory(dj_set=dj_set, position=1, track=None, start_seconds=300, end_seconds=400)
    SetTrackFactory(dj_set=dj_set, position=2, track=second, start_seconds=400, end_seconds=700)
    SetTrackFactory(dj_set=dj_set, position=3, track=first, start_seconds=700, end_seconds=900)

    services.recount_set(dj_set.id)
    services.recount_set(dj_set.id)  # reprocessing never double-counts
    db.session.expire_all()

    stored = db.session.get(DjSet, dj_set.id)
    assert stored is not None
    assert stored.track_count == 2
    assert stored.coverage == pytest.approx(0.8)
    assert db.session.get(Channel, channel.id).set_count == 1  # type: ignore[union-attr]
    assert db.session.get(Track, first.id).set_count == 1  # type: ignore[union-attr]


def test_recount_ignores_hidden_sets_in_track_counts(app: Flask) -> None:
    track = TrackFactory()
    visible = DjSetFactory()
    hidden = DjSetFactory(is_hidden=True)
    SetTrackFactory(dj_set=visible, track=track)
    SetTrackFactory(dj_set=hidden, track=track)

    services.recount_set(hidden.id)
    db.session.expire_all()

    assert db.session.get(Track, track.id).set_count == 1  # type: ignore[union-attr]


def test_a_channels_set_count_leaves_out_hidden_and_unpublished_sets(app: Flask) -> None:
    channel = ChannelFactory()
    shown, also_shown = DjSetFactory(channel=channel), DjSetFactory(channel=channel)
    DjSetFactory(channel=channel, is_hidden=True)
    DjSetFactory(channel=channel, is_published=False)

    services.recount_set(shown.id)
    db.session.expire_all()
    counted = db.session.get(Channel, channel.id).set_count  # type: ignore[union-attr]
    db.session.get(DjSet, also_shown.id).is_hidden = True  # type: ignore[union-attr]
    services.recount_set(also_shown.id)
    db.session.expire_all()

    assert counted == 2
    assert db.session.get(Channel, channel.id).set_count == 1  # type: ignore[union-attr]


def test_coverage_never_exceeds_the_whole_set(app: Flask) -> None:
    dj_set = DjSetFactory(duration_seconds=100)
    SetTrackFactory(dj_set=dj_set, start_seconds=0, end_seconds=150)

    services.recount_set(dj_set.id)
    db.session.expire_all()

    assert db.session.get(DjSet, dj_set.id).coverage == 1.0  # type: ignore[union-attr]


def test_recount_of_a_missing_set_is_not_found(app: Flask) -> None:
    with pytest.raises(NotFound):
        services.recount_set(987_654)
