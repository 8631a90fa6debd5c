"""The engine finds library tracks in mixes: decoding, fingerprints, index segments, matching.

Everything runs on generated tone tracks (``mixes.tone_track``), rendered once per module:
aevalsrc evaluates its expression per sample, so the audio is the slow part of this file.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from set2tracks.fingerprint import audio, engine, features, index, matcher, scan
from set2tracks.fingerprint.features import Quads
from set2tracks.fingerprint.mixes import MixPlan, Segment, TruthEntry, build_mix, tone_track

RATE = audio.SAMPLE_RATE

# Name: (seed, seconds). "a".."e" are indexed; "stranger" never is.
TONES = {
    "a": (11, 60.0),
    "b": (12, 50.0),
    "c": (13, 50.0),
    "d": (14, 30.0),
    "e": (15, 30.0),
    "stranger": (99, 40.0),
}
LIBRARY = ("a", "b", "c", "d", "e")
FILE_IDS = {name: number for number, name in enumerate(LIBRARY, start=1)}


def ffmpeg(*args: str) -> None:
    subprocess.run([audio.ffmpeg_path(), "-nostdin", "-v", "error", "-y", *args], check=True)


def samples_of(path: Path, **options: float) -> audio.Samples:
    return np.concatenate(list(audio.decode(path, **options)))


def quads_of(path: Path, **options: float) -> Quads:
    return features.extract(samples_of(path, **options))


def same_quads(one: Quads, other: Quads) -> bool:
    return all(
        np.array_equal(getattr(one, name), getattr(other, name))
        for name in ("hashes", "times", "spans", "logf")
    )


def quads(times: list[int], spans: list[int], logf: list[int], hashes: list[int]) -> Quads:
    return Quads(
        np.array(hashes, np.uint32),
        np.array(times, np.int32),
        np.array(spans, np.int16),
        np.array(logf, np.int16),
    )


def peaks(times: list[int], hertz: float = 220.0, level: float = -1.5) -> features.Peaks:
    count = len(times)
    return features.Peaks(
        np.array(times, np.int32),
        np.full(count, np.log2(hertz), np.float32),
        np.ones(count, np.float32),
        np.full(count, level, np.float32),
    )


def new_store(root: Path) -> index.SegmentStore:
    store = index.SegmentStore(root)
    store.segments_dir.mkdir(parents=True)
    return store


def write_segment(
    store: index.SegmentStore, name: str, files: dict[int, tuple[Quads, features.Peaks]]
) -> None:
    packed = [index.pack(file_id, found) for file_id, (found, _) in files.items()]
    store.write(
        name,
        np.concatenate([keys for keys, _ in packed]),
        np.concatenate([payload for _, payload in packed]),
        index.PeakTable.of([(file_id, file_peaks) for file_id, (_, file_peaks) in files.items()]),
    )


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tones")
    paths = {name: folder / f"{name}.wav" for name in TONES}
    # Rendering is single-threaded ffmpeg: two at a time halves the wait on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [
            pool.submit(tone_track, paths[name], seconds, seed)
            for name, (seed, seconds) in TONES.items()
        ]
        for job in jobs:
            job.result()
    return paths


@dataclass(frozen=True)
class Library:
    reader: index.IndexReader
    fingerprints: dict[str, engine.FileFingerprints]


@pytest.fixture(scope="module")
def library(tones: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Library:
    store = new_store(tmp_path_factory.mktemp("index"))
    fingerprints = {name: engine.fingerprint_file(tones[name]) for name in LIBRARY}
    write_segment(
        store,
        "seg-x",
        {FILE_IDS[name]: (found.quads, found.peaks) for name, found in fingerprints.items()},
    )
    reader = index.IndexReader([store.open("seg-x")], FILE_IDS.values())
    return Library(reader, fingerprints)


@dataclass(frozen=True)
class Mix:
    truth: list[TruthEntry]
    names: list[str]
    plain: engine.Tracklist  # where the fingerprints recognise each track
    refined: engine.Tracklist  # moved to where the fades begin and end, as `flask identify` does


@pytest.fixture(scope="module")
def mix(tones: dict[str, Path], library: Library, tmp_path_factory: pytest.TempPathFactory) -> Mix:
    """A, B, A, C: key lock 1.06, vinyl 1.05, key lock 0.94, key lock 0.97; D and E unplayed."""
    plan = MixPlan(
        segments=[
            Segment(tones["a"], 0.0, 50.0, speed=1.06),
            Segment(tones["b"], 2.0, 48.0, speed=1.05, key_lock=False),
            Segment(tones["a"], 12.0, 45.0, speed=0.94),
            Segment(tones["c"], 2.0, 46.0, speed=0.97),
        ],
        crossfade=10.0,
        # The engine hears 8 kHz: a 16 kHz mix renders twice as fast as 44.1 kHz.
        sample_rate=16000,
        seed=5,
    )
    output = tmp_path_factory.mktemp("mix") / "mix.mp3"
    truth = build_mix(plan, output)
    names = ["a", "b", "a", "c"]
    plain = engine.identify(library.reader, audio.decode(output))
    refined = engine.identify(
        library.reader, audio.decode(output), reference_peaks=library.reader.peaks
    )
    return Mix(truth, names, plain, refined)


# Features.


def test_streaming_extraction_equals_whole_signal_extraction(tones: dict[str, Path]) -> None:
    samples = samples_of(tones["a"], duration=40.0)
    whole = features.extract(samples)
    # Blocks shorter than one FFT frame, one sample past a frame and past a peak block, ...
    sizes = [1, 5, 1023, 1025, 62 * 128 + 1, 7919, 30001]
    extractor = features.Extractor()
    parts = []
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(samples):
            break
        parts.append(extractor.feed(samples[position : position + size]))
        position += size
    parts.append(extractor.finish())

    streamed = Quads.concat(parts)

    assert len(whole) > 400
    assert same_quads(streamed, whole)
    assert extractor.seconds == pytest.approx(40.0, abs=0.01)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(10 * RATE, np.float32),
        np.zeros(0, np.float32),
        # 60 ms of a loud tone: a few spectrogram frames, never four peaks far enough apart.
        np.sin(2 * np.pi * 440 * np.arange(500) / RATE).astype(np.float32),
    ],
    ids=["silence", "nothing", "60-ms"],
)
def test_silence_and_tiny_input_give_no_quads(samples: audio.Samples) -> None:
    assert len(features.extract(samples)) == 0


def test_quads_are_ordered_and_fit_their_fields(library: Library) -> None:
    found = library.fingerprints["a"].quads

    assert int(found.hashes.max()) < 2**28
    assert np.all(np.diff(found.times) >= 0)
    # Three gaps of at least MIN_GAP frames, at most MAX_SPAN frames in all: a span the
    # index's 7 bits hold unclipped, or every match's speed would be wrong.
    assert found.spans.min() >= 3 * features.MIN_GAP
    assert found.spans.max() <= min(features.MAX_SPAN, 2**index.SPAN_BITS - 1)


def hash_share(original: Quads, changed: Quads) -> float:
    """Share of the original's distinct hashes the matcher's probes of ``changed`` reach."""
    probes = set(changed.hashes.tolist())
    probes |= set(features.neighbour_band_hashes(changed.hashes, changed.logf).tolist())
    reference = set(original.hashes.tolist())
    return len(reference & probes) / len(reference)


@pytest.mark.parametrize(
    "speed_filter",
    ["atempo=1.08", "asetrate=44100*1.05,aresample=44100", "asetrate=44100*0.95,aresample=44100"],
    ids=["key-lock-1.08", "vinyl-1.05", "vinyl-0.95"],
)
def test_speed_changes_keep_a_large_share_of_the_hashes(
    tones: dict[str, Path], tmp_path: Path, speed_filter: str
) -> None:
    changed_path = tmp_path / "changed.wav"
    ffmpeg("-t", "30", "-i", str(tones["a"]), "-af", speed_filter, str(changed_path))
    original = quads_of(tones["a"], duration=30.0)

    kept = hash_share(original, quads_of(changed_path))
    unrelated = hash_share(original, quads_of(tones["d"], duration=30.0))

    assert kept > 0.3
    assert unrelated < 0.05


def test_an_anchor_without_a_neighbour_band_is_looked_up_once() -> None:
    # One quad whose anchor sits at 120 Hz: band 0, an eighth of an octave above its floor,
    # so there is no band below to probe; its votes must not count twice.
    logf = np.array([round(np.log2(120 / 110) * features.LOGF_PAYLOAD_STEPS)], np.int16)
    hashes = np.array([12345 * features.BANDS], np.uint32)
    quads = features.Quads(hashes, np.array([100], np.int32), np.array([60], np.int16), logf)
    asked: list[list[int]] = []

    class Recorder:
        def matches(self, probes: np.ndarray, *rest: object) -> index.Matched:
            asked.append(probes.tolist())
            empty = np.empty(0, np.int64)
            nothing = np.empty(0, np.float32)
            return index.Matched(empty, empty, empty, nothing, nothing)

    matcher.Matcher(Recorder())._lookup(quads)  # type: ignore[arg-type]

    assert asked == [hashes.tolist()]


# Audio.


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"a shopping list, not a song\n"),
        ("track.mp3", b"\x00\x01 not audio at all " * 50),
        ("track.flac", bytes(range(256)) * 80),
        ("empty.wav", b""),
    ],
    ids=["text", "junk-mp3", "junk-flac", "empty-wav"],
)
def test_decoding_non_audio_raises_a_one_line_reason(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(audio.AudioError) as raised:
        samples_of(path)

    message = str(raised.value)
    assert message.strip()
    assert "\n" not in message


def test_decoding_honours_start_and_duration(tones: dict[str, Path]) -> None:
    excerpt = samples_of(tones["b"], start=10.0, duration=7.5)
    whole = samples_of(tones["b"])

    assert len(excerpt) == pytest.approx(7.5 * RATE, abs=RATE * 0.01)
    assert len(whole) == pytest.approx(50.0 * RATE, abs=RATE * 0.01)
    # The excerpt is that part of the file, to well under a quarter of a second.
    position = 10 * RATE + 1000
    here = excerpt[1000 : 1000 + RATE]
    assert np.corrcoef(here, whole[position : position + RATE])[0, 1] > 0.99
    later = position + RATE // 4
    assert np.corrcoef(here, whole[later : later + RATE])[0, 1] < 0.5


def test_decoding_in_small_blocks_yields_the_same_samples(tones: dict[str, Path]) -> None:
    blocks = list(audio.decode(tones["d"], block_seconds=1.0))

    assert len(blocks) == 30
    assert max(len(block) for block in blocks) <= RATE
    assert np.array_equal(np.concatenate(blocks), samples_of(tones["d"]))


# Index.


def test_pack_and_unpack_round_trip() -> None:
    last_frame = index.MAX_FRAME
    found = quads(
        times=[0, 1234, last_frame],
        spans=[18, 77, 120],
        logf=[0, 150, 319],
        hashes=[5, 2**28 - 1, 42],
    )

    keys, payload = index.pack(index.MAX_FILE_ID, found)
    rows = index.unpack(np.arange(3), payload)

    assert keys.tolist() == [5, 2**28 - 1, 42]
    assert rows.file_ids.tolist() == [index.MAX_FILE_ID] * 3
    assert rows.times.tolist() == [0, 1234, last_frame]
    assert rows.spans.tolist() == [18, 77, 120]
    assert rows.logf.tolist() == [0, 150, 319]


def test_pack_drops_anchors_past_the_time_field() -> None:
    found = quads(times=[10, index.MAX_FRAME + 1], spans=[20, 20], logf=[5, 5], hashes=[1, 2])

    keys, payload = index.pack(7, found)

    assert keys.tolist() == [1]
    assert index.unpack(np.arange(1), payload).times.tolist() == [10]


@pytest.mark.parametrize("file_id", [0, -1, index.MAX_FILE_ID + 1])
def test_pack_refuses_ids_the_index_cannot_hold(file_id: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        index.pack(file_id, quads([1], [20], [5], [1]))


def write_files(store: index.SegmentStore, name: str, files: dict[int, list[int]]) -> None:
    """A segment holding, for each file id, one row per hash (anchor frame = the hash)."""
    write_segment(
        store,
        name,
        {
            file_id: (quads(hashes, [30] * len(hashes), [64] * len(hashes), hashes), peaks(hashes))
            for file_id, hashes in files.items()
        },
    )


def test_lookup_finds_every_row_of_live_files_only(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    write_files(store, "seg-1", {1: [10, 20, 30], 2: [20, 40]})
    write_files(store, "seg-2", {3: [20, 50]})
    segments = [store.open("seg-1"), store.open("seg-2")]

    everyone = index.IndexReader(segments, [1, 2, 3]).lookup(np.array([20, 99, 50], np.uint32))
    without_two = index.IndexReader(segments, [1, 3]).lookup(np.array([20, 40], np.uint32))

    assert sorted(zip(everyone.query.tolist(), everyone.file_ids.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
        (0, 3),
        (2, 3),
    ]
    assert sorted(without_two.file_ids.tolist()) == [1, 3]
    assert set(without_two.query.tolist()) == {0}


def test_merge_drops_removed_files_and_keeps_the_rest_findable(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    write_files(store, "seg-1", {1: [10, 20], 2: [20, 30]})
    write_files(store, "seg-2", {3: [30, 40], 4: [40]})
    live = np.zeros(5, bool)
    live[[1, 3]] = True

    name, rows, size = store.merge([store.open("seg-1"), store.open("seg-2")], live)
    merged = store.open(name)
    reader = index.IndexReader([merged], range(1, 5))
    found = reader.lookup(np.array([10, 20, 30, 40], np.uint32))

    assert rows == 4
    assert size > 0
    assert merged.file_ids().tolist() == [1, 3]
    assert sorted(zip(found.query.tolist(), found.file_ids.tolist(), strict=True)) == [
        (0, 1),
        (1, 1),
        (2, 3),
        (3, 3),
    ]
    # The peaks that place a play's fades go and stay with their files.
    assert reader.peaks(2, 0, 100) is None
    assert reader.peaks(4, 0, 100) is None
    kept = [reader.peaks(file_id, 0, 100) for file_id in (1, 3)]
    assert [None if p is None else p.times.tolist() for p in kept] == [[10, 20], [30, 40]]


def test_merging_away_every_file_leaves_a_usable_empty_segment(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    write_files(store, "seg-1", {1: [10, 20]})

    name, rows, _ = store.merge([store.open("seg-1")], np.zeros(2, bool))
    reader = index.IndexReader([store.open(name)], [1])

    assert rows == 0
    assert len(reader.lookup(np.array([10], np.uint32)).file_ids) == 0
    assert reader.peaks(1, 0, 100) is None


def test_stored_peaks_come_back_by_frame_range(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = peaks([5, 50, 70, 300], hertz=440.0, level=-2.25)
    write_segment(store, "seg-1", {7: (quads([5], [30], [64], [1]), stored)})
    reader = index.IndexReader([store.open("seg-1")], [7])

    found = reader.peaks(7, 40, 300)

    assert found is not None
    assert found.times.tolist() == [50, 70]
    # Stored at 1/1024 octave and 1/256 natural-log unit.
    assert np.allclose(found.logf, np.log2(440.0), atol=1e-3)
    assert np.allclose(found.level, -2.25, atol=1e-2)
    assert reader.peaks(8, 0, 300) is None


def test_the_peaks_of_a_removed_file_are_not_served(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    write_files(store, "seg-1", {1: [10], 2: [20], 3: [30]})
    # File 3, the newest, was removed; its rows wait for the next merge.
    reader = index.IndexReader([store.open("seg-1")], [1, 2])

    assert len(reader.lookup(np.array([30], np.uint32)).file_ids) == 0
    assert reader.peaks(3, 0, 100) is None


def test_sweep_deletes_folders_no_committed_row_names(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    for name in ("seg-kept", "seg-merged-away"):
        write_files(store, name, {1: [10]})
    (store.segments_dir / "seg-interrupted.tmp").mkdir()

    stale = store.sweep({"seg-kept"})

    assert sorted(stale) == ["seg-interrupted.tmp", "seg-merged-away"]
    assert [path.name for path in store.segments_dir.iterdir()] == ["seg-kept"]
    assert len(store.open("seg-kept")) == 1


def test_sweep_deletes_stray_files_too(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    (store.segments_dir / "copied-by-hand.npy").write_bytes(b"not a segment")

    assert store.sweep(set()) == ["copied-by-hand.npy"]
    assert list(store.segments_dir.iterdir()) == []


def test_opening_a_missing_segment_says_to_index_again(tmp_path: Path) -> None:
    with pytest.raises(index.IndexStoreError, match="indexed again"):
        new_store(tmp_path).open("seg-gone")


def test_a_second_writer_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    first, second = index.SegmentStore(tmp_path), index.SegmentStore(tmp_path)

    with (
        first.writer_lock(),
        pytest.raises(index.IndexStoreError, match="another process is writing"),
        second.writer_lock(),
    ):
        pass
    with second.writer_lock():
        assert second.segments_dir.is_dir()


def test_plan_merges_groups_four_segments_of_a_tier() -> None:
    small = {f"small-{n}": 1000 + n for n in range(4)}
    big = {f"big-{n}": (4 << 20) + n for n in range(3)}

    groups = index.plan_merges({**big, **small})

    assert groups == [["small-0", "small-1", "small-2", "small-3"]]
    assert index.plan_merges({name: small[name] for name in list(small)[:3]}) == []


def test_plan_merges_never_builds_a_segment_past_the_cap() -> None:
    # Merging sorts in memory: segments that would together pass the cap stay apart.
    sizes = {f"seg-{n}": 20 << 20 for n in range(8)}

    assert index.plan_merges(sizes, max_rows=64 << 20) == []
    assert len(index.plan_merges(sizes, max_rows=80 << 20)) == 2


# The engine on files.


def test_fingerprinting_a_file_reports_its_duration(
    tones: dict[str, Path], library: Library
) -> None:
    fingerprints = library.fingerprints["b"]

    assert fingerprints.duration == pytest.approx(50.0, abs=0.05)
    assert fingerprints.size_bytes == tones["b"].stat().st_size
    # What tells a file already indexed from a new one.
    assert fingerprints.content_hash == scan.content_hash(tones["b"])
    assert len(fingerprints.quads) >= fingerprints.duration


def short_tone(path: Path) -> None:
    tone_track(path, 2.0, 3)


def silence(path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "20", str(path))


def not_audio(path: Path) -> None:
    path.write_text("a shopping list, not a song\n")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (silence, "silent"),
        (short_tone, r"too short \(2\.0 s of audio; 5 s needed\)"),
        (not_audio, "not audio ffmpeg can decode"),
    ],
    ids=["silent-20-s", "2-s", "text"],
)
def test_unusable_files_are_refused_with_a_reason(
    tmp_path: Path, make: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "file.wav"
    make(path)

    with pytest.raises(engine.Unusable, match=reason) as raised:
        engine.fingerprint_file(path)
    assert "\n" not in str(raised.value)


# The engine on mixes.


@pytest.mark.parametrize(
    ("silence_before", "gain"),
    [(0.0, 1.0), (20.0, 1.0), (0.0, 0.05)],
    ids=["as-is", "after-20-s-of-silence", "26-dB-quieter"],
)
def test_a_library_track_is_found_where_it_plays(
    tones: dict[str, Path], library: Library, silence_before: float, gain: float
) -> None:
    blocks = [np.zeros(int(silence_before * RATE), np.float32), gain * samples_of(tones["c"])]

    tracklist = engine.identify(library.reader, blocks, reference_peaks=library.reader.peaks)

    (found,) = tracklist.found
    assert found.file_id == FILE_IDS["c"]
    assert found.start == pytest.approx(silence_before, abs=1.0)
    # The last anchors of a file lack the later peaks a quad needs.
    assert found.end == pytest.approx(silence_before + 50.0, abs=2.5)
    assert found.speed == pytest.approx(1.0, abs=0.002)
    assert found.pitch == pytest.approx(1.0, abs=0.002)
    assert found.confidence > 0.8
    assert tracklist.duration == pytest.approx(silence_before + 50.0, abs=0.01)


@pytest.fixture(params=["fingerprints", "fades"])
def heard(request: pytest.FixtureRequest, mix: Mix) -> list[engine.Found]:
    """The mix's plays as the fingerprints place them, then as refined on their fades.

    Tone tracks hold about 6 peaks a second, under the 8 refine.py needs to judge a second:
    refining leaves these plays where the fingerprints put them, so the "fades" runs only
    guard that it loses, adds and breaks nothing on the way `flask identify` takes.
    """
    tracklist = mix.plain if request.param == "fingerprints" else mix.refined
    return tracklist.found


def test_every_excerpt_of_a_mix_is_found_in_order(mix: Mix, heard: list[engine.Found]) -> None:
    assert [found.file_id for found in heard] == [FILE_IDS[name] for name in mix.names]
    for found, truth in zip(heard, mix.truth, strict=True):
        # The truth runs from the first sample of the fade-in to the last of the fade-out.
        assert found.start == pytest.approx(truth.start, abs=15.0)
        assert found.end == pytest.approx(truth.end, abs=15.0)
        assert found.confidence > 0.3


def test_speed_and_pitch_tell_key_lock_from_vinyl(mix: Mix, heard: list[engine.Found]) -> None:
    assert len(heard) == len(mix.truth)
    for found, truth in zip(heard, mix.truth, strict=True):
        assert found.speed == pytest.approx(truth.speed, rel=0.01)
        # Anchor frequencies are stored at 1/64 octave (1.1 %).
        assert found.pitch == pytest.approx(truth.pitch, abs=0.012)


def test_tracks_not_played_never_appear(mix: Mix, heard: list[engine.Found]) -> None:
    played = {FILE_IDS[name] for name in mix.names}

    assert {found.file_id for found in heard} == played
    assert {FILE_IDS["d"], FILE_IDS["e"]}.isdisjoint(found.file_id for found in heard)


def test_a_track_played_twice_appears_twice(heard: list[engine.Found]) -> None:
    plays = [found for found in heard if found.file_id == FILE_IDS["a"]]

    assert len(plays) == 2
    first, second = plays
    assert first.end < second.start
    assert first.speed == pytest.approx(1.06, rel=0.01)
    assert second.speed == pytest.approx(0.94, rel=0.01)


def test_the_tracklist_lasts_as_long_as_the_mix(mix: Mix) -> None:
    # MP3 encoder delay and padding add a few milliseconds.
    assert mix.plain.duration == pytest.approx(mix.truth[-1].end, abs=0.2)
    assert mix.refined.duration == mix.plain.duration


@pytest.fixture(scope="module")
def pink_noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "noise.wav"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3:seed=4:d=30", str(path))
    return path


@pytest.mark.parametrize("stranger", ["tone", "noise"])
def test_audio_not_in_the_library_finds_nothing(
    tones: dict[str, Path], pink_noise: Path, library: Library, stranger: str
) -> None:
    path = tones["stranger"] if stranger == "tone" else pink_noise

    tracklist = engine.identify(
        library.reader, audio.decode(path), reference_peaks=library.reader.peaks
    )

    assert tracklist.duration > 29.0
    assert tracklist.found == []
