"""Finding or creating the catalogue track a recognizer named, once, even under races."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from set2tracks.extensions import db
from set2tracks.pipeline.plays import TrackRef
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import (
    UNKNOWN_ARTIST,
    forget_library_file,
    get_or_create_track,
    link_library_track,
    normal_isrc,
)
from tests.factories import LibraryFileFactory, SetTrackFactory, TrackFactory


def track_count() -> int:
    return int(db.session.scalar(select(func.count(Track.id))) or 0)


def test_a_new_track_is_created_public_with_its_tags_and_found_again(app: Flask) -> None:
    ref = TrackRef("Glue", "Bicep", shazam_key="406325737", isrc="gb-cel-17-00123", album="Bicep")

    track = get_or_create_track(ref)
    again = get_or_create_track(ref)

    assert track is not None
    assert again is track
    assert (track.title, track.artist, track.album, track.shazam_key, track.isrc) == (
        "Glue",
        "Bicep",
        "Bicep",
        "406325737",
        "GBCEL1700123",
    )
    assert track.is_public
    assert "Glue" in track.search_document
    assert track_count() == 1


@pytest.mark.parametrize(
    "ref",
    [
        TrackRef("whatever", shazam_key="406325737"),
        TrackRef("whatever", isrc="GBCEL1700123"),
        TrackRef("whatever", shazam_key="999", isrc="GB-CEL-17-00123"),
    ],
)
def test_a_known_track_is_found_by_any_key(app: Flask, ref: TrackRef) -> None:
    known = TrackFactory(title="Glue", shazam_key="406325737", isrc="GBCEL1700123")

    assert get_or_create_track(ref) is known
    assert track_count() == 1


def test_a_library_file_names_its_own_track_first(app: Flask) -> None:
    library_file = LibraryFileFactory()
    own = TrackFactory(library_file=library_file, shazam_key=None, is_public=False)
    TrackFactory(shazam_key="123")  # another track the ref's other key names

    found = get_or_create_track(TrackRef("x", library_file_id=library_file.id, shazam_key="123"))

    assert found is own


def test_a_library_file_without_a_track_gets_a_private_one_from_its_tags(app: Flask) -> None:
    library_file = LibraryFileFactory(title="Dub (promo)", artist=None, album="White label")

    track = get_or_create_track(TrackRef("ignored", library_file_id=library_file.id))

    assert track is not None
    assert (track.title, track.artist, track.album) == (
        "Dub (promo)",
        UNKNOWN_ARTIST,
        "White label",
    )
    assert not track.is_public
    assert track.library_file_id == library_file.id


def test_a_library_file_removed_meanwhile_leaves_the_row_unknown(app: Flask) -> None:
    library_file = LibraryFileFactory(isrc="GBAYE0800001")
    db.session.flush()
    removed_id = library_file.id
    db.session.delete(library_file)
    db.session.flush()

    # Its ISRC names no catalogue track: the private file's tags make no public track.
    assert get_or_create_track(TrackRef("secret_promo", library_file_id=removed_id)) is None
    ref = TrackRef("secret_promo", library_file_id=removed_id, isrc="GBAYE0800001")
    assert get_or_create_track(ref) is None
    assert track_count() == 0
    # A key the catalogue knows still names the track.
    known = TrackFactory(isrc="GBAYE0800001")
    assert get_or_create_track(ref) is known


def test_a_ref_without_any_key_names_nothing(app: Flask) -> None:
    assert get_or_create_track(TrackRef("Intro")) is None
    assert get_or_create_track(TrackRef("Intro", shazam_key="", isrc="not an isrc")) is None
    assert track_count() == 0


def test_tags_are_cut_to_what_the_columns_hold(app: Flask) -> None:
    ref = TrackRef("  " + "t" * 400, "  ", shazam_key="k" * 40, isrc="GBAYE0800009")

    track = get_or_create_track(ref)

    assert track is not None
    assert (len(track.title), track.artist, track.shazam_key) == (300, UNKNOWN_ARTIST, None)
    db.session.flush()


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("GBAYE0800001", "GBAYE0800001"),
        ("gb-aye-08-00001", "GBAYE0800001"),
        ("GB AYE 08 00001", "GBAYE0800001"),
        ("GBAYE080000", None),
        ("1BAYE0800001", None),
        ("", None),
        (None, None),
    ],
)
def test_isrcs_are_stored_in_one_form(raw: str | None, stored: str | None) -> None:
    assert normal_isrc(raw) == stored


@pytest.mark.postgres
@pytest.mark.committing
def test_two_workers_saving_one_new_track_at_once_share_it(app: Flask) -> None:
    """The second insert waits on the first's uncommitted key, fails, and finds the first's."""
    ref = TrackRef("Glue", "Bicep", shazam_key="406325737")
    found: dict[str, Any] = {}
    first_inserted = threading.Event()
    first_may_commit = threading.Event()

    def worker(name: str) -> None:
        with app.app_context():
            try:
                track = get_or_create_track(ref)
                found[name] = track.id if track is not None else None
                if name == "first":
                    first_inserted.set()
                    first_may_commit.wait(timeout=60)
                db.session.commit()
            except BaseException as error:
                found[name] = error
                first_inserted.set()
            finally:
                db.session.remove()

    first = threading.Thread(target=worker, args=("first",))
    second = threading.Thread(target=worker, args=("second",))
    first.start()
    assert first_inserted.wait(timeout=60)
    second.start()
    with app.app_context(), db.engine.connect() as watcher:
        # The second worker found nothing and now waits on the first's uncommitted key.
        wait_for_a_lock_wait(watcher)
    first_may_commit.set()
    first.join(timeout=60)
    second.join(timeout=60)

    assert isinstance(found["first"], int), found
    assert found["second"] == found["first"], found
    with app.app_context():
        assert track_count() == 1


def wait_for_a_lock_wait(connection: Any) -> None:
    """Return once some session of this database waits for another's lock."""
    deadline = time.monotonic() + 30
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        waiting = connection.execute(query).scalar()
        connection.rollback()  # a fresh snapshot of pg_stat_activity next time
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the second worker never waited for the first one's insert")


def test_a_second_library_file_of_one_recording_gets_its_own_track_without_the_isrc(
    app: Flask,
) -> None:
    catalogue = TrackFactory(isrc="GBAYE0800001")
    first = LibraryFileFactory(isrc="GBAYE0800001")
    second = LibraryFileFactory(isrc="GBAYE0800001", title="Alpha (other rip)")

    linked = link_library_track(first)
    db.session.flush()
    own = link_library_track(second)

    assert linked is catalogue
    assert own is not catalogue
    assert (own.title, own.isrc, own.is_public) == ("Alpha (other rip)", None, False)


def test_forgetting_a_library_file_retires_a_track_nothing_else_needs(app: Flask) -> None:
    unused = LibraryFileFactory()
    played = LibraryFileFactory()
    known = LibraryFileFactory()
    for library_file in (unused, played, known):
        link_library_track(library_file)
    db.session.flush()
    SetTrackFactory(track=played.track)
    known.track.shazam_key = "555"  # type: ignore[union-attr]
    ids = {
        name: row.track.id  # type: ignore[union-attr]
        for name, row in (("unused", unused), ("played", played), ("known", known))
    }

    for library_file in (unused, played, known):
        forget_library_file(library_file.id)
    forget_library_file(424242)  # already gone: nothing to do
    db.session.flush()

    assert db.session.get(Track, ids["unused"]) is None
    for name in ("played", "known"):
        kept = db.session.get(Track, ids[name])
        assert kept is not None
        assert kept.library_file_id is None
