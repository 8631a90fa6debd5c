"""Browsing sets and keeping their counters true."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import event

from set2tracks.errors import NotFound
from set2tracks.extensions import db
from set2tracks.sets import services
from set2tracks.sets.models import Channel, DjSet
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import ANONYMOUS, Viewer
from tests.factories import (
    ChannelFactory,
    DjSetFactory,
    SetTrackFactory,
    TrackFactory,
    UserFactory,
)


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


def _set_with_a_private_track(owner_id: int | None = None) -> DjSet:
    """A recounted set of 1000 s: a public track for 300 s, then a private one for 200 s."""
    dj_set = DjSetFactory(duration_seconds=1000, submitted_by_id=owner_id)
    public, private = TrackFactory(), TrackFactory(is_public=False)
    SetTrackFactory(dj_set=dj_set, position=0, track=public, start_seconds=0, end_seconds=300)
    SetTrackFactory(dj_set=dj_set, position=1, track=private, start_seconds=300, end_seconds=500)
    services.recount_set(dj_set.id)
    return dj_set


def test_recount_stores_the_public_counters_next_to_the_full_ones(app: Flask) -> None:
    dj_set = _set_with_a_private_track()
    db.session.expire_all()

    stored = db.session.get(DjSet, dj_set.id)
    assert stored is not None
    assert (stored.track_count, stored.coverage) == (2, pytest.approx(0.5))
    assert (stored.public_track_count, stored.public_coverage) == (1, pytest.approx(0.3))


def test_browsing_keeps_unsaved_changes_and_still_gives_the_viewers_counters(
    app: Flask,
) -> None:
    dj_set = _set_with_a_private_track()
    dj_set.title = "Renamed, not flushed yet"

    with db.session.no_autoflush:  # as while a service builds up its changes
        (listed,) = db.session.scalars(services.browse_sets()).unique()

    assert listed is dj_set
    assert listed.title == "Renamed, not flushed yet"
    assert (listed.shown_track_count, listed.shown_coverage) == (1, pytest.approx(0.3))


def test_the_browse_query_counts_nothing_per_set(app: Flask) -> None:
    """Counting set_tracks per listed set made every page scale with the whole catalogue."""
    owner = UserFactory()
    _set_with_a_private_track(owner.id)
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]).lower())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for viewer in (ANONYMOUS, Viewer(user_id=owner.id), Viewer(user_id=0, is_admin=True)):
            for sort in services.SORTS:
                page = db.session.scalars(services.browse_sets(sort=sort, viewer=viewer).limit(30))
                assert len(page.unique().all()) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)

    pages = [statement for statement in statements if "from sets" in statement]
    assert len(pages) == 3 * len(services.SORTS)  # one statement per page
    assert not [statement for statement in statements if "set_tracks" in statement]
