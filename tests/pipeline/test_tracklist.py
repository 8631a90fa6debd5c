"""The tracklist rules: recognizers' plays in, the rows a listener reads out."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.pipeline.tracklist import (
    ECHO_RATIO,
    MAX_BRIDGE_SECONDS,
    SLIVER_SECONDS,
    build_tracklist,
)
from set2tracks.sets.models import FoundBy

ALPHA = TrackRef("Alpha", "Artist A", library_file_id=1)
BRAVO = TrackRef("Bravo", "Artist B", library_file_id=2)
CHARLIE = TrackRef("Charlie", "Artist C", shazam_key="300")
DELTA = TrackRef("Delta", "Artist D", isrc="GBAYE0800004")

Layout = list[tuple[float, float, str | None]]


def play(
    start: float,
    end: float,
    track: TrackRef | None,
    confidence: float | None = 0.9,
    speed: float | None = None,
    found_by: FoundBy | None = FoundBy.LIBRARY,
) -> Play:
    return Play(start, end, track, found_by=found_by, confidence=confidence, speed=speed)


def layout(rows: Sequence[Play]) -> Layout:
    """What a reader of the tracklist sees: each row's times (to the ms) and title or None."""
    return [
        (round(row.start, 3), round(row.end, 3), row.track.title if row.track else None)
        for row in rows
    ]


def test_a_crossfade_is_cut_at_the_middle_of_the_overlap() -> None:
    rows = build_tracklist([play(0, 100, ALPHA), play(90, 200, BRAVO)], 200)

    assert layout(rows) == [(0, 95, "Alpha"), (95, 200, "Bravo")]


def test_a_track_dropped_over_a_longer_one_splits_it() -> None:
    rows = build_tracklist([play(0, 300, ALPHA, 0.9), play(100, 150, BRAVO, 0.8)], 300)

    assert layout(rows) == [(0, 100, "Alpha"), (100, 150, "Bravo"), (150, 300, "Alpha")]


@pytest.mark.parametrize(
    ("inner_confidence", "kept"),
    [
        (0.2, False),
        (ECHO_RATIO * 0.9 - 0.01, False),
        (ECHO_RATIO * 0.9, True),
        (0.8, True),
        (None, True),  # nothing says it is faint: it was played
    ],
)
def test_a_faint_play_inside_a_longer_one_is_an_echo_and_dropped(
    inner_confidence: float | None, kept: bool
) -> None:
    rows = build_tracklist([play(0, 300, ALPHA, 0.9), play(100, 150, BRAVO, inner_confidence)], 300)

    titles = [title for _, _, title in layout(rows)]
    assert titles == (["Alpha", "Bravo", "Alpha"] if kept else ["Alpha"])


def test_a_play_inside_one_without_confidence_is_kept_however_faint() -> None:
    rows = build_tracklist([play(0, 300, ALPHA, None), play(100, 150, BRAVO, 0.01)], 300)

    assert [title for _, _, title in layout(rows)] == ["Alpha", "Bravo", "Alpha"]


@pytest.mark.parametrize("between_confidence", [0.9, 0.05, None])
def test_a_different_track_between_two_plays_of_one_track_is_never_swallowed(
    between_confidence: float | None,
) -> None:
    # The original app dropped Bravo here and showed Alpha from 0 to 400.
    plays = [
        play(0, 180, ALPHA, 0.9),
        play(180, 220, BRAVO, between_confidence, found_by=FoundBy.SHAZAM),
        play(220, 400, ALPHA, 0.9),
    ]

    rows = build_tracklist(plays, 400)

    assert layout(rows) == [(0, 180, "Alpha"), (180, 220, "Bravo"), (220, 400, "Alpha")]


def test_shazam_windows_of_one_track_with_one_window_of_another_keep_the_other() -> None:
    window = 12.0
    heard = [ALPHA, ALPHA, ALPHA, BRAVO, ALPHA, ALPHA]
    plays = [
        play(index * window, (index + 1) * window, ref, None, found_by=FoundBy.SHAZAM)
        for index, ref in enumerate(heard)
    ]

    rows = build_tracklist(plays, 72)

    assert layout(rows) == [(0, 36, "Alpha"), (36, 48, "Bravo"), (48, 72, "Alpha")]
    assert all(row.found_by is FoundBy.SHAZAM for row in rows)


def test_overlapping_and_touching_plays_of_one_track_are_one_row() -> None:
    plays = [
        play(0, 100, ALPHA, 0.6, speed=1.0),
        play(80, 200, ALPHA, 0.9, speed=1.1),
        play(200, 300, ALPHA, 0.7, speed=None),
    ]

    rows = build_tracklist(plays, 300)

    assert layout(rows) == [(0, 300, "Alpha")]
    assert rows[0].confidence == 0.9
    # Weighted by how long each play with a known speed lasted: 100 s at 1.0, 120 s at 1.1.
    assert rows[0].speed == pytest.approx((100 * 1.0 + 120 * 1.1) / 220)


def test_a_short_silent_gap_between_two_plays_of_one_track_is_bridged() -> None:
    plays = [play(0, 100, ALPHA), play(100 + MAX_BRIDGE_SECONDS, 400, ALPHA)]

    rows = build_tracklist(plays, 400)

    assert layout(rows) == [(0, 400, "Alpha")]


def test_a_long_gap_between_two_plays_of_one_track_stays_unknown() -> None:
    # The DJ played Alpha again later: what came between is other, unidentified music.
    plays = [play(0, 100, ALPHA), play(100 + MAX_BRIDGE_SECONDS + 1, 400, ALPHA)]

    rows = build_tracklist(plays, 400)

    assert layout(rows) == [
        (0, 100, "Alpha"),
        (100, 100 + MAX_BRIDGE_SECONDS + 1, None),
        (100 + MAX_BRIDGE_SECONDS + 1, 400, "Alpha"),
    ]


def test_a_gap_that_another_track_reaches_into_is_not_bridged() -> None:
    plays = [play(0, 100, ALPHA), play(90, 120, BRAVO), play(130, 300, ALPHA)]

    rows = build_tracklist(plays, 300)

    assert layout(rows) == [
        (0, 95, "Alpha"),
        (95, 120, "Bravo"),
        (120, 130, None),
        (130, 300, "Alpha"),
    ]


def test_unidentified_stretches_are_unknown_rows_never_absorbed() -> None:
    plays = [play(30, 100, ALPHA), play(160, 250, BRAVO)]

    rows = build_tracklist(plays, 300)

    assert layout(rows) == [
        (0, 30, None),
        (30, 100, "Alpha"),
        (100, 160, None),
        (160, 250, "Bravo"),
        (250, 300, None),
    ]
    unknown = [row for row in rows if row.track is None]
    assert all(
        (row.confidence, row.speed, row.found_by, row.pitch) == (None, None, None, None)
        for row in unknown
    )


def test_neighbours_meet_across_a_sub_second_sliver() -> None:
    plays = [play(0.4, 100, ALPHA), play(100.6, 200, BRAVO), play(200, 299.5, CHARLIE)]

    rows = build_tracklist(plays, 300)

    assert layout(rows) == [(0, 100.3, "Alpha"), (100.3, 200, "Bravo"), (200, 300, "Charlie")]


def test_a_one_second_gap_is_already_an_unknown_row() -> None:
    plays = [play(0, 100, ALPHA), play(100 + SLIVER_SECONDS, 200, BRAVO)]

    rows = build_tracklist(plays, 200)

    assert layout(rows) == [
        (0, 100, "Alpha"),
        (100, 100 + SLIVER_SECONDS, None),
        (100 + SLIVER_SECONDS, 200, "Bravo"),
    ]


def test_plays_from_several_recognizers_of_one_track_are_one_row_with_every_key() -> None:
    from_library = TrackRef("alpha_promo_v3", None, library_file_id=1, isrc="GBAYE0800001")
    from_shazam = TrackRef("Alpha", "Artist A", shazam_key="100", isrc="GBAYE0800001")
    plays = [
        play(0, 150, from_library, 0.95, found_by=FoundBy.LIBRARY),
        play(140, 200, from_shazam, None, found_by=FoundBy.SHAZAM),
    ]

    rows = build_tracklist(plays, 200)

    assert layout(rows) == [(0, 200, "alpha_promo_v3")]
    assert rows[0].found_by is FoundBy.LIBRARY
    assert rows[0].track == TrackRef(
        "alpha_promo_v3",
        "Artist A",
        library_file_id=1,
        shazam_key="100",
        isrc="GBAYE0800001",
    )


def test_tracks_linked_through_a_third_play_are_one_track() -> None:
    # Library and Shazam refs share no key; a third play shares one with each.
    library = TrackRef("Alpha", library_file_id=1)
    shazam = TrackRef("Alpha", shazam_key="100")
    bridge = TrackRef("Alpha", library_file_id=1, shazam_key="100")
    plays = [play(0, 100, library), play(100, 200, shazam), play(150, 250, bridge)]

    assert layout(build_tracklist(plays, 250)) == [(0, 250, "Alpha")]


def test_refs_without_keys_are_different_tracks() -> None:
    plays = [play(0, 100, TrackRef("Intro")), play(50, 200, TrackRef("Intro"))]

    rows = build_tracklist(plays, 200)

    assert [row.start for row in rows] == [0, 75]


def test_two_recognizers_disagreeing_on_one_stretch_keep_the_surer() -> None:
    plays = [play(0, 100, ALPHA, 0.9), play(0, 100, CHARLIE, 0.3, found_by=FoundBy.SHAZAM)]

    assert layout(build_tracklist(plays, 100)) == [(0, 100, "Alpha")]


def test_plays_are_clipped_to_the_set_and_plays_without_a_track_ignored() -> None:
    plays = [
        play(-5, 50, ALPHA),
        play(40, 60, None),
        play(60, 500, BRAVO),
        play(700, 800, CHARLIE),
        play(math.nan, 10, DELTA),
    ]

    rows = build_tracklist(plays, 120)

    assert layout(rows) == [(0, 50, "Alpha"), (50, 60, None), (60, 120, "Bravo")]


@pytest.mark.parametrize(
    ("duration", "expected"),
    [(0, []), (0.5, [(0, 0.5, None)]), (600, [(0, 600, None)])],
)
def test_a_set_where_nothing_was_recognized(duration: float, expected: Layout) -> None:
    assert layout(build_tracklist([], duration)) == expected


@pytest.mark.parametrize("duration", [-1, math.inf, math.nan])
def test_an_impossible_duration_is_a_bug_said_plainly(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        build_tracklist([play(0, 10, ALPHA)], duration)


def test_a_real_mix_reads_as_the_dj_played_it() -> None:
    # Library plays of a one-hour mix: crossfades, a track dropped over another, a faint
    # echo, one play split by a breakdown the engine missed, and an unidentified stretch.
    plays = [
        play(0.0, 412.3, ALPHA, 0.93, speed=1.02),
        play(398.1, 640.0, BRAVO, 0.88, speed=1.0),
        play(500.0, 530.0, DELTA, 0.12),  # echo of Bravo
        play(631.5, 900.2, CHARLIE, 0.91, speed=0.98),
        play(940.0, 1200.0, CHARLIE, 0.86, speed=0.98),  # after a breakdown
        play(1050.0, 1080.0, ALPHA, 0.8),  # Alpha dropped over Charlie
        play(1500.0, 1800.4, DELTA, 0.7),
    ]

    rows = build_tracklist(plays, 1800.0)

    assert layout(rows) == [
        (0.0, 405.2, "Alpha"),
        (405.2, 635.75, "Bravo"),
        (635.75, 1050.0, "Charlie"),
        (1050.0, 1080.0, "Alpha"),
        (1080.0, 1200.0, "Charlie"),
        (1200.0, 1500.0, None),
        (1500.0, 1800.0, "Delta"),
    ]


def test_the_order_recognizers_answer_in_does_not_matter() -> None:
    plays = [
        play(0, 100, ALPHA, 0.9),
        play(0, 100, CHARLIE, 0.9, found_by=FoundBy.SHAZAM),
        play(90, 200, BRAVO, 0.7),
        play(150, 160, DELTA, None),
    ]
    shuffled = plays[:]
    random.Random(7).shuffle(shuffled)

    assert build_tracklist(shuffled, 250) == build_tracklist(plays, 250)


# Properties over random plays.

REFS = [
    ALPHA,
    BRAVO,
    CHARLIE,
    DELTA,
    # Alpha again through another recognizer, sharing its library file id.
    TrackRef("Alpha (Shazam)", shazam_key="101", library_file_id=1),
    TrackRef("Echo", isrc="GBAYE0800005"),
]

times = st.integers(min_value=0, max_value=1200).map(lambda tenths: tenths / 2)
confidences = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0))


@st.composite
def plays_strategy(draw: st.DrawFn, refs: Sequence[TrackRef] = REFS) -> list[Play]:
    count = draw(st.integers(min_value=0, max_value=12))
    plays = []
    for _ in range(count):
        start = draw(times)
        length = draw(st.integers(min_value=1, max_value=400).map(lambda tenths: tenths / 2))
        plays.append(
            Play(
                start,
                start + length,
                draw(st.sampled_from(refs)),
                found_by=draw(st.sampled_from(FoundBy)),
                confidence=draw(confidences),
                speed=draw(st.one_of(st.none(), st.floats(min_value=0.9, max_value=1.1))),
            )
        )
    return plays


durations = st.integers(min_value=0, max_value=1300).map(lambda tenths: tenths / 2)


def assert_well_formed(rows: Sequence[Play], duration: float) -> None:
    if duration == 0:
        assert rows == []
        return
    assert rows[0].start == 0
    assert rows[-1].end == duration
    for row in rows:
        assert row.end > row.start
    for previous, row in itertools.pairwise(rows):
        assert previous.end == row.start
        if previous.track is None or row.track is None:
            assert previous.track is not None or row.track is not None
        else:
            assert not previous.track.same_track(row.track)
    if len(rows) > 1:
        assert all(row.duration >= SLIVER_SECONDS for row in rows if row.track is None)


@settings(max_examples=400, deadline=None)
@given(plays=plays_strategy(), duration=durations)
def test_rows_cover_the_set_in_order_without_overlap(plays: list[Play], duration: float) -> None:
    rows = build_tracklist(plays, duration)

    assert_well_formed(rows, duration)
    for row in rows:
        if row.track is not None:
            # Every named row was heard there: some play of that track reaches into it.
            assert any(
                item.track is not None
                and item.track.same_track(row.track)
                and item.start < row.end
                and item.end > row.start
                for item in plays
            )


@settings(max_examples=300, deadline=None)
@given(plays=plays_strategy(), duration=durations, seed=st.randoms())
def test_rows_do_not_depend_on_the_order_of_plays(
    plays: list[Play], duration: float, seed: random.Random
) -> None:
    shuffled = plays[:]
    seed.shuffle(shuffled)

    assert build_tracklist(shuffled, duration) == build_tracklist(plays, duration)


@settings(max_examples=300, deadline=None)
@given(plays=plays_strategy(), duration=durations)
def test_a_tracklist_is_its_own_tracklist(plays: list[Play], duration: float) -> None:
    rows = build_tracklist(plays, duration)

    assert build_tracklist(rows, duration) == rows


@settings(max_examples=300, deadline=None)
@given(plays=plays_strategy(), duration=durations)
def test_a_play_overlapping_no_other_track_is_kept_whole(
    plays: list[Play], duration: float
) -> None:
    rows = build_tracklist(plays, duration)

    for item in plays:
        assert item.track is not None
        start, end = max(item.start, 0), min(item.end, duration)
        alone = not any(
            other.track is not None
            and not other.track.same_track(item.track)
            and other.start < end
            and other.end > start
            for other in plays
        )
        if alone and end > start:
            covering = [row for row in rows if row.start < end and row.end > start]
            assert all(
                row.track is not None and row.track.same_track(item.track) for row in covering
            )


@settings(max_examples=300, deadline=None)
@given(
    plays=plays_strategy(refs=[TrackRef(f"T{n}", library_file_id=n) for n in range(12)]),
    duration=durations,
)
def test_unknown_rows_are_exactly_the_stretches_nobody_identified(
    plays: list[Play], duration: float
) -> None:
    distinct = list({item.track: item for item in plays}.values())  # no track played twice

    rows = build_tracklist(distinct, duration)

    heard = sorted(
        (max(item.start, 0), min(item.end, duration))
        for item in distinct
        if min(item.end, duration) > max(item.start, 0)
    )
    silent: list[tuple[float, float]] = []
    cursor = 0.0
    for start, end in heard:
        if start - cursor >= SLIVER_SECONDS:
            silent.append((cursor, start))
        cursor = max(cursor, end)
    if duration - cursor >= SLIVER_SECONDS or (not heard and duration > 0):
        silent.append((cursor, duration))
    assert [(row.start, row.end) for row in rows if row.track is None] == silent
