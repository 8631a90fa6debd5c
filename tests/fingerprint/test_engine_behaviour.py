"""The engine's judgement on material where it makes a difference.

Tone tracks (test_engine.py) hold too few peaks for fade placement and share no material:
these tracks are dense random notes (about 22 peaks a second, like real music), some over
one shared drum loop, mixed in numpy so every fade and cut is known to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.io import wavfile

from set2tracks.fingerprint import audio, engine, index

RATE = audio.SAMPLE_RATE
SECONDS = 60
Signal = npt.NDArray[np.float32]


def notes(seed: int, seconds: float = SECONDS) -> Signal:
    """Two random decaying notes every eighth of a second over four octaves, and a hiss."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    length = RATE // 2
    decay = np.exp(-6 * np.arange(length) / RATE)
    for first in range(0, len(out), RATE // 8):
        span = min(length, len(out) - first)
        for hertz in 110 * 2 ** (rng.integers(0, 48, size=2) / 12):
            phase = 2 * np.pi * hertz * np.arange(span) / RATE
            out[first : first + span] += 0.2 * decay[:span] * np.sin(phase)
    out += 0.02 * rng.standard_normal(len(out))
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


def drum_loop(seconds: float = SECONDS) -> Signal:
    """Half a second of kick, bell and hi-hat, repeated: what tracks of a genre share."""
    t = np.arange(RATE // 2) / RATE
    loop = 0.6 * np.exp(-25 * t) * np.sin(2 * np.pi * 60 * t)
    loop += np.exp(-12 * t) * (
        0.3 * np.sin(2 * np.pi * 880 * t) + 0.25 * np.sin(2 * np.pi * 1320 * t)
    )
    hat = np.random.default_rng(9).standard_normal(400) * np.exp(-np.arange(400) / 80)
    loop[RATE // 4 : RATE // 4 + 400] += 0.15 * hat
    return np.tile(loop, int(seconds * 2) + 1)[: int(seconds * RATE)].astype(np.float32)


@dataclass(frozen=True)
class Library:
    reader: index.IndexReader
    tracks: dict[int, Signal]  # by file id


def build_library(folder: Path, tracks: dict[int, Signal]) -> Library:
    store = index.SegmentStore(folder)
    store.segments_dir.mkdir(parents=True)
    fingerprints = {}
    for file_id, signal in tracks.items():
        path = folder / f"{file_id}.wav"
        wavfile.write(path, RATE, signal)
        fingerprints[file_id] = engine.fingerprint_file(path)
    packed = [index.pack(file_id, found.quads) for file_id, found in fingerprints.items()]
    store.write(
        "seg-1",
        np.concatenate([keys for keys, _ in packed]),
        np.concatenate([payload for _, payload in packed]),
        index.PeakTable.of([(file_id, found.peaks) for file_id, found in fingerprints.items()]),
    )
    return Library(index.IndexReader([store.open("seg-1")], list(tracks)), tracks)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """Tracks 1 and 2: notes alone."""
    return build_library(tmp_path_factory.mktemp("notes"), {1: notes(1), 2: notes(2)})


@pytest.fixture(scope="module")
def genre(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """Tracks 1-6: quieter notes over the same drum loop."""
    loop = drum_loop()
    tracks = {file_id: (0.3 * notes(file_id) + loop).astype(np.float32) for file_id in range(1, 7)}
    return build_library(tmp_path_factory.mktemp("genre"), tracks)


def seconds(value: float) -> int:
    return int(value * RATE)


def identify(library: Library, mix: Signal, *, refine: bool = True) -> list[engine.Found]:
    blocks = [mix[first : first + seconds(30)] for first in range(0, len(mix), seconds(30))]
    peaks = library.reader.peaks if refine else None
    return engine.identify(library.reader, blocks, reference_peaks=peaks).found


def test_refine_places_a_crossfade_where_the_fader_moves(library: Library) -> None:
    """Track 1 alone, a 20 s linear crossfade from 40 s to 60 s, then track 2 alone."""
    first, second = library.tracks[1], library.tracks[2]
    fade = np.linspace(1.0, 0.0, seconds(20), dtype=np.float32)
    mix = np.zeros(seconds(100), np.float32)
    mix[: seconds(60)] += first * np.concatenate([np.ones(seconds(40), np.float32), fade])
    mix[seconds(40) :] += second * np.concatenate([fade[::-1], np.ones(seconds(40), np.float32)])

    plain = identify(library, mix, refine=False)
    refined = identify(library, mix)

    assert [found.file_id for found in refined] == [1, 2]
    outgoing, incoming = refined
    assert incoming.start == pytest.approx(40.0, abs=1.5)
    assert outgoing.end == pytest.approx(60.0, abs=1.5)
    # What refining is for: the fingerprints alone hear the fade seconds late.
    assert plain[1].start > 44.0
    assert plain[0].end < 56.0


def test_refine_extends_a_fade_in_back_to_where_it_began(library: Library) -> None:
    """Track 2 fades in from 40 s to 60 s under track 1 at full level, in a noisy room.

    Its first seconds are inaudible: only the line through the gain's climb, extended to
    silence, reaches back to where the DJ started moving the fader.
    """
    first, second = library.tracks[1], library.tracks[2]
    fade = np.linspace(0.0, 1.0, seconds(20), dtype=np.float32)
    mix = np.zeros(seconds(100), np.float32)
    mix[: seconds(60)] += first
    mix[seconds(40) :] += second * np.concatenate([fade, np.ones(seconds(40), np.float32)])
    mix += 0.3 * np.random.default_rng(4).standard_normal(len(mix)).astype(np.float32)

    plain = identify(library, mix, refine=False)
    refined = identify(library, mix)

    assert [found.file_id for found in refined] == [1, 2]
    assert refined[1].start == pytest.approx(40.0, abs=2.0)
    assert refined[0].end == pytest.approx(60.0, abs=1.5)
    assert plain[1].start > 46.0


def test_a_track_replayed_at_the_same_speed_is_two_entries(library: Library) -> None:
    """Track 1's first 30 s, track 2 (hard cuts), then track 1's first 30 s again."""
    first, second = library.tracks[1], library.tracks[2]
    mix = np.concatenate([first[: seconds(30)], second[: seconds(30)], first[: seconds(30)]])

    found = identify(library, mix)

    assert [(play.file_id, round(play.start), round(play.end)) for play in found] == [
        (1, 0, 30),
        (2, 30, 60),
        (1, 60, 90),
    ]
    assert [play.speed for play in found] == pytest.approx([1.0, 1.0, 1.0], abs=0.002)


def test_a_track_still_playing_under_a_loud_stretch_is_one_entry(library: Library) -> None:
    """20 s of track 1 buried under loud noise: longer than the gap that splits a play."""
    mix = library.tracks[1].copy()
    buried = slice(seconds(20), seconds(40))
    noise = np.random.default_rng(3).standard_normal(seconds(20)).astype(np.float32)
    mix[buried] = 0.05 * mix[buried] + 0.8 * noise

    found = identify(library, mix, refine=False)

    assert [play.file_id for play in found] == [1]
    assert found[0].start == pytest.approx(0.0, abs=2.0)
    assert found[0].end == pytest.approx(60.0, abs=2.5)


def test_a_stranger_over_the_same_drum_loop_is_not_a_library_track(genre: Library) -> None:
    """Shared loops make a few chance matches of every track: too few to name one."""
    stranger = (0.3 * notes(30) + drum_loop()).astype(np.float32)

    assert identify(genre, stranger) == []
    assert identify(genre, drum_loop()) == []
    # The same material does find a library track that plays in it.
    assert [found.file_id for found in identify(genre, genre.tracks[4])] == [4]
