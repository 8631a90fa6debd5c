"""The mix builder renders excerpts, tempo and speed changes and crossfades where it says."""

from __future__ import annotations

import itertools
import random
import re
import subprocess
from array import array
from pathlib import Path

import pytest
from mutagen.mp3 import MP3

from set2tracks.fingerprint import audio
from set2tracks.fingerprint.mixes import (
    MixPlan,
    Segment,
    TruthEntry,
    build_mix,
    probe_duration,
    random_plan,
    read_truth,
    tone_track,
    write_truth,
)

RATE = 44100


def sine(path: Path, frequency: float, seconds: float) -> Path:
    subprocess.run(
        [
            audio.ffmpeg_path(),
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={frequency}:sample_rate={RATE}:duration={seconds}",
            str(path),
        ],
        check=True,
    )
    return path


def dominant_frequency(path: Path, start: float, seconds: float) -> float:
    """Estimate the frequency of a pure tone from its zero crossings."""
    raw = subprocess.run(
        [
            audio.ffmpeg_path(),
            "-nostdin",
            "-loglevel",
            "error",
            "-ss",
            str(start),
            "-t",
            str(seconds),
            "-i",
            str(path),
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-f",
            "s16le",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    samples = array("h")
    samples.frombytes(raw)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / RATE)


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("tones")
    paths = [folder / f"tone-{seed}.wav" for seed in range(3)]
    for seed, path in enumerate(paths):
        tone_track(path, 4.0, seed)
    return paths


@pytest.fixture(scope="module")
def a440(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sine(tmp_path_factory.mktemp("sine") / "a440.wav", 440, 3.0)


def test_tone_tracks_differ_by_seed(tones: list[Path]) -> None:
    assert [round(probe_duration(path), 2) for path in tones] == [4.0, 4.0, 4.0]
    contents = {path.read_bytes() for path in tones}
    assert len(contents) == len(tones)


def test_each_entry_starts_one_crossfade_before_the_previous_ends(
    tones: list[Path], tmp_path: Path
) -> None:
    plan = MixPlan(
        segments=[
            Segment(tones[0], 0.5, 3.0),
            Segment(tones[1], 0.0, 3.3, speed=1.1),
            Segment(tones[2], 1.0, 2.7, speed=0.9, key_lock=False),
        ],
        crossfade=1.0,
        mp3_bitrate=None,
    )
    output = tmp_path / "mix.wav"

    truth = build_mix(plan, output)

    assert [entry.source for entry in truth] == [str(path) for path in tones]
    assert truth[0].start == 0.0
    for entry, segment in zip(truth, plan.segments, strict=True):
        assert entry.end - entry.start == pytest.approx(segment.duration / segment.speed, abs=1e-3)
        assert entry.source_start == segment.source_start
    for previous, entry in itertools.pairwise(truth):
        assert entry.start == pytest.approx(previous.end - plan.crossfade, abs=1e-3)
    # Three 3 s excerpts joined by two 1 s crossfades.
    assert truth[-1].end == pytest.approx(7.0, abs=1e-3)
    assert probe_duration(output) == pytest.approx(truth[-1].end, abs=0.01)
    assert [(entry.speed, entry.pitch) for entry in truth] == [(1.0, 1.0), (1.1, 1.0), (0.9, 0.9)]


def test_key_lock_shortens_and_keeps_the_pitch(a440: Path, tmp_path: Path) -> None:
    output = tmp_path / "keylock.wav"
    plan = MixPlan([Segment(a440, 0.0, 3.0, speed=1.1)], crossfade=1.0, mp3_bitrate=None)

    (entry,) = build_mix(plan, output)

    assert entry.end == pytest.approx(3.0 / 1.1, abs=1e-3)
    assert entry.pitch == 1.0
    assert probe_duration(output) == pytest.approx(3.0 / 1.1, abs=0.01)
    assert dominant_frequency(output, 0.5, 1.5) == pytest.approx(440, rel=0.02)


def test_vinyl_speed_raises_the_pitch(a440: Path, tmp_path: Path) -> None:
    output = tmp_path / "vinyl.wav"
    plan = MixPlan(
        [Segment(a440, 0.0, 3.0, speed=1.1, key_lock=False)], crossfade=1.0, mp3_bitrate=None
    )

    (entry,) = build_mix(plan, output)

    assert entry.pitch == 1.1
    assert probe_duration(output) == pytest.approx(3.0 / 1.1, abs=0.01)
    assert dominant_frequency(output, 0.5, 1.5) == pytest.approx(484, rel=0.02)


def test_mp3_with_eq_and_noise_decodes_to_the_truth_length(
    tones: list[Path], tmp_path: Path
) -> None:
    output = tmp_path / "mix.mp3"
    plan = MixPlan(
        segments=[Segment(tones[0], 0.0, 3.0, speed=0.95), Segment(tones[1], 0.5, 3.0)],
        crossfade=1.0,
        eq=True,
        noise_level=0.05,
        seed=7,
    )

    truth = build_mix(plan, output)

    decoded = subprocess.run(
        [
            audio.ffmpeg_path(),
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(output),
            "-f",
            "s16le",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert len(decoded) > RATE
    assert probe_duration(output) == pytest.approx(truth[-1].end, abs=0.15)
    encoded = MP3(output).info
    # The header's bit rate, as LAME computes it: 128000, or 127999 from FFmpeg 9's LAME.
    assert (round(encoded.bitrate, -3), encoded.sample_rate) == (128000, RATE)


def test_a_track_played_twice_appears_twice(tones: list[Path], tmp_path: Path) -> None:
    plan = MixPlan(
        segments=[
            Segment(tones[0], 0.0, 2.5),
            Segment(tones[1], 0.0, 2.5),
            Segment(tones[0], 1.5, 2.5),
        ],
        crossfade=1.0,
        mp3_bitrate=None,
    )

    truth = build_mix(plan, tmp_path / "twice.wav")

    assert [(entry.source, entry.source_start) for entry in truth] == [
        (str(tones[0]), 0.0),
        (str(tones[1]), 0.0),
        (str(tones[0]), 1.5),
    ]


def test_a_missing_source_is_named(tones: list[Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-track.flac"
    plan = MixPlan([Segment(tones[0], 0.0, 2.5), Segment(missing, 0.0, 2.5)], crossfade=1.0)

    with pytest.raises(ValueError, match=re.escape(str(missing))):
        build_mix(plan, tmp_path / "mix.mp3")
    assert not (tmp_path / "mix.mp3").exists()


def test_an_undecodable_source_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp3"
    bogus.write_bytes(b"\x00\x01 not audio at all " * 50)

    with pytest.raises(ValueError, match=re.escape(str(bogus))):
        build_mix(MixPlan([Segment(bogus, 0.0, 2.0)]), tmp_path / "mix.mp3")


def test_an_excerpt_past_the_end_of_its_source_is_refused(
    tones: list[Path], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="runs past the end"):
        build_mix(MixPlan([Segment(tones[0], 3.0, 2.0)]), tmp_path / "mix.mp3")


def test_crossfades_longer_than_an_excerpt_are_refused(tones: list[Path], tmp_path: Path) -> None:
    plan = MixPlan([Segment(tones[0], 0.0, 2.0), Segment(tones[1], 0.0, 2.0)], crossfade=3.0)

    with pytest.raises(ValueError, match="too short"):
        build_mix(plan, tmp_path / "mix.mp3")


def test_random_plan_repeats_tracks_but_never_back_to_back() -> None:
    sources = [Path("a.flac"), Path("b.flac"), Path("c.flac")]
    durations = {Path("a.flac"): 300.0, Path("b.flac"): 200.0, Path("c.flac"): 20.0}

    plan = random_plan(
        sources,
        durations,
        rng=random.Random(3),
        count=12,
        min_seconds=40,
        max_seconds=90,
        max_speed_change=0.06,
        vinyl_share=0.25,
        crossfade=8.0,
    )

    names = [segment.source.name for segment in plan.segments]
    assert len(names) == 12
    assert "c.flac" not in names  # shorter than any excerpt
    assert all(a != b for a, b in itertools.pairwise(names))
    assert len(set(names)) < len(names)
    for segment in plan.segments:
        assert 0.94 <= segment.speed <= 1.06
        assert 40 <= segment.duration <= 90
        assert segment.source_start + segment.duration <= durations[segment.source]
    assert any(not segment.key_lock for segment in plan.segments)
    assert any(segment.key_lock for segment in plan.segments)
    assert plan.crossfade == 8.0
    assert plan.mp3_bitrate == "128k"


def test_random_plan_refuses_excerpts_too_short_for_the_crossfades() -> None:
    with pytest.raises(ValueError, match="too short"):
        random_plan(
            [Path("a.flac")],
            {Path("a.flac"): 100.0},
            rng=random.Random(1),
            count=3,
            min_seconds=10,
            max_seconds=20,
            max_speed_change=0.1,
            vinyl_share=0.0,
            crossfade=8.0,
        )


def test_truth_round_trips_through_json(tmp_path: Path) -> None:
    entries = [
        TruthEntry("a.flac", 0.0, 61.5, 1.04, 1.0, 12.25),
        TruthEntry("b.flac", 53.5, 120.0, 0.97, 0.97, 0.0),
    ]
    path = tmp_path / "truth.json"

    write_truth(entries, path)

    assert read_truth(path) == entries


def test_outputs_named_like_a_protocol_are_written_as_files(
    tones: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Relative names: "set:1.mp3" would otherwise be read as a URL of protocol "set".
    monkeypatch.chdir(tmp_path)
    tone, mix = Path("tone:1.wav"), Path("set:1.mp3")

    tone_track(tone, 3.0, seed=7)
    plan = MixPlan(segments=[Segment(tones[0], 0.0, 2.0), Segment(tone, 0.0, 2.0)], crossfade=0.5)
    build_mix(plan, mix)

    assert round(probe_duration(tmp_path / "tone:1.wav"), 2) == 3.0
    # 2 s + 2 s - 0.5 s of crossfade, plus the MP3 encoder's padding.
    assert 3.5 <= probe_duration(tmp_path / "set:1.mp3") < 3.6
