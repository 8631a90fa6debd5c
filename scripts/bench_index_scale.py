#!/usr/bin/env python3
"""Benchmark the own-library index at library scale: 10,000 tracks (about 700 hours).

Ten thousand real tracks are not at hand, so the index holds the 18 real tracks of Debian's
``nexuiz-music`` (fingerprinted with ``engine.fingerprint_file``, ids 1-18, with their
peaks) next to synthetic "tracks" of 300 s (ids 19 on, no peaks) at the real tracks' rate
of index rows per second of audio. A synthetic row gets a uniform anchor time in its track,
a uniform span in [18, 120] frames, and a hash drawn by one of three models:

- ``resample`` (default): from the real tracks' hashes, as often as they occur there. The
  pessimistic bound: every synthetic row reuses one of a few hundred thousand values, the
  very values the mix (made of the same tracks) looks up;
- ``uniform``: uniform over the real hashes' range below 2**28, with the real share of each
  half-octave band. The optimistic bound: no value is more popular than another;
- ``marginal``: each field of the hash (two time ratios, three pitch steps, band) drawn on
  its own from its real distribution: popular shapes stay popular, but the values are not
  limited to those the 18 tracks happened to produce. A middle estimate.

The anchor log-frequency stored next to a hash is drawn uniformly within the range the real
rows of that hash's band cover, as a real row's is: drawn over the whole range it would
fail the matcher's pitch test far more often than a real collision does. Synthetic rows
are random in time, so they cost what real collisions cost (lookup, filtering, voting) but
never line up the way a similar real track could: precision at scale is not measured here.

Rows are written like ``flask library add`` writes them: a segment per batch of
``library.BATCH_ROWS`` rows, then merged as ``library.compact`` does (``plan_merges``), both
in a child process whose peak memory is the build's. ``--segment-rows N`` writes segments
of N rows instead and merges none. This process then opens the segments memory-mapped and
identifies a ~60-minute mix of the real tracks (built like ``bench_identify.py --hour``,
or given with ``--mix``) twice: first with the index's pages dropped from the page cache
(``posix_fadvise``), then warm; ``--profile`` adds a third run under cProfile. It prints
index size, build time and memory, the memory of identifying (VmRSS counts the index pages
once touched; RssAnon is what competes for RAM), speed, candidates per lookup, and recall,
precision and start error scored as ``bench_identify.py`` scores them.

Run from the repository root::

    .venv/bin/python scripts/bench_index_scale.py --hours 20              # quick
    .venv/bin/python scripts/bench_index_scale.py --workdir /tmp/s2t-scale --json r.json
    .venv/bin/python scripts/bench_index_scale.py --workdir /tmp/s2t-scale --hash-model uniform

A work folder given with ``--workdir`` keeps the real tracks' fingerprints and the mix for
the next run; the index (about 3 GB at 700 h) is deleted unless ``--keep``. Needs
``apt-get install nexuiz-music`` (ffmpeg: the system's, else the bundled one).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
# Run as a file, the script sees scripts/ on sys.path, not the repository root.
sys.path.insert(0, str(REPO))

from bench_identify import (  # noqa: E402
    MIN_CROSSFADE,
    PK3,
    BenchError,
    BenchMix,
    Reported,
    Score,
    build_all,
    extract_music,
    hour_plan,
    machine,
    machine_name,
    missing_prerequisite,
    say,
    score,
    work_folder,
)

from set2tracks.fingerprint import audio, engine, features  # noqa: E402
from set2tracks.fingerprint.index import (  # noqa: E402
    LOGF_BITS,
    SPAN_BITS,
    TIME_BITS,
    IndexReader,
    PeakTable,
    SegmentStore,
    pack,
    plan_merges,
    unpack,
)
from set2tracks.fingerprint.library import BATCH_ROWS  # noqa: E402
from set2tracks.fingerprint.mixes import MixPlan, probe_duration, read_truth  # noqa: E402

HASH_MODELS = ("resample", "uniform", "marginal")
TRACK_SECONDS = 300.0
MIN_SPAN = 3 * features.MIN_GAP
MAX_SPAN = features.MAX_SPAN
# Synthetic rows are generated this many at a time into a segment's arrays.
CHUNK_ROWS = 4_000_000
HOUR_CROSSFADE = 16.0  # bench_identify.py's default longest crossfade
IDENTIFY_TARGET = 200.0
MEMORY_TARGET_GIB = 4.0
MEMORY_SAMPLE_SECONDS = 0.05
PROFILE_LINES = 15
_TIME_SHIFT = SPAN_BITS + LOGF_BITS
_FILE_SHIFT = TIME_BITS + _TIME_SHIFT
_SEGMENT_PARTS = ("keys", "payload")


# Memory ------------------------------------------------------------------------------------


def proc_status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process, in KiB."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "VmHWM"}
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            found[key] = int(value.split()[0])
    return found


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class MemoryWatch:
    """The largest VmRSS, RssAnon and RssFile seen while the block runs (sampled)."""

    def __init__(self) -> None:
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        for key, value in proc_status().items():
            self.peak[key] = max(self.peak.get(key, 0), value)


def engine_version() -> str:
    """The commit measured, and whether the engine's files differ from it."""
    try:
        head = subprocess.run(  # noqa: S603 (a fixed argument list)
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(  # noqa: S603
            ["git", "-C", str(REPO), "status", "--porcelain", "set2tracks"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted engine changes" if changed else head


def mib(kib: int) -> float:
    return kib / 1024


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


# The real tracks ---------------------------------------------------------------------------


@dataclass
class RealTracks:
    """The real tracks' fingerprints, file id = position + 1."""

    names: list[str]
    durations: list[float]
    quads: list[features.Quads]
    peaks: list[features.Peaks]
    fingerprint_seconds: float

    @property
    def rows(self) -> int:
        return sum(len(q) for q in self.quads)

    @property
    def seconds(self) -> float:
        return sum(self.durations)

    def all_quads(self) -> features.Quads:
        return features.Quads.concat(self.quads)


def real_tracks(sources: Sequence[Path], cache: Path) -> RealTracks:
    """Fingerprint the sources, or read the fingerprints a previous run left in ``cache``."""
    names = [source.name for source in sources]
    if cache.is_file():
        with np.load(cache) as data:
            if [str(name) for name in data["names"]] == names:
                return _unsplit(data, names)
        say("the real tracks changed: fingerprinting them again")
    say(f"fingerprinting {len(sources)} real tracks")
    began = time.perf_counter()
    prints = [engine.fingerprint_file(source) for source in sources]
    elapsed = time.perf_counter() - began
    tracks = RealTracks(
        names=names,
        durations=[item.duration for item in prints],
        quads=[item.quads for item in prints],
        peaks=[item.peaks for item in prints],
        fingerprint_seconds=elapsed,
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    quads = tracks.all_quads()
    peaks = features.concat_peaks(tracks.peaks)
    np.savez(
        cache,
        names=np.array(names),
        durations=np.array(tracks.durations),
        fingerprint_seconds=np.array(elapsed),
        quad_counts=np.array([len(q) for q in tracks.quads]),
        hashes=quads.hashes,
        times=quads.times,
        spans=quads.spans,
        logf=quads.logf,
        peak_counts=np.array([len(p) for p in tracks.peaks]),
        peak_times=peaks.times,
        peak_logf=peaks.logf,
        peak_strength=peaks.strength,
        peak_level=peaks.level,
    )
    return tracks


def _unsplit(data: Any, names: list[str]) -> RealTracks:
    quad_bounds = np.cumsum(data["quad_counts"])[:-1]
    peak_bounds = np.cumsum(data["peak_counts"])[:-1]
    quad_parts = zip(
        *(np.split(data[part], quad_bounds) for part in ("hashes", "times", "spans", "logf")),
        strict=True,
    )
    peak_parts = zip(
        *(
            np.split(data[part], peak_bounds)
            for part in ("peak_times", "peak_logf", "peak_strength", "peak_level")
        ),
        strict=True,
    )
    return RealTracks(
        names=names,
        durations=[float(d) for d in data["durations"]],
        quads=[features.Quads(*parts) for parts in quad_parts],
        peaks=[features.Peaks(*parts) for parts in peak_parts],
        fingerprint_seconds=float(data["fingerprint_seconds"]),
    )


# Synthetic rows ----------------------------------------------------------------------------


def pack_rows(
    file_ids: npt.NDArray[np.int64],
    times: npt.NDArray[np.int64],
    spans: npt.NDArray[np.int64],
    logf: npt.NDArray[np.int64],
) -> npt.NDArray[np.uint64]:
    """``index.pack`` for many files at once: the same bits (checked in ``Synthesizer``)."""
    return (
        (file_ids.astype(np.uint64) << np.uint64(_FILE_SHIFT))
        | (times.astype(np.uint64) << np.uint64(_TIME_SHIFT))
        | (np.clip(spans, 0, (1 << SPAN_BITS) - 1).astype(np.uint64) << np.uint64(LOGF_BITS))
        | np.clip(logf, 0, (1 << LOGF_BITS) - 1).astype(np.uint64)
    )


class Synthesizer:
    """Rows of synthetic tracks under one hash model, drawn from the real rows' statistics."""

    def __init__(self, real: features.Quads, model: str, seed: int) -> None:
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.real_hashes = real.hashes
        band = (real.hashes % features.BANDS).astype(np.int64)
        self.band_share = np.bincount(band, minlength=features.BANDS) / len(band)
        # Each band's real log-frequency range: a synthetic anchor stays inside its band.
        logf = real.logf.astype(np.int64)
        self.logf_low = np.zeros(features.BANDS, np.int64)
        self.logf_high = np.zeros(features.BANDS, np.int64)
        for value in np.flatnonzero(self.band_share):
            self.logf_low[value] = logf[band == value].min()
            self.logf_high[value] = logf[band == value].max()
        high = real.hashes // features.BANDS
        self.high_range = (int(high.min()), int(high.max()))
        self.digits = _digits(real.hashes)

    def hashes(self, count: int) -> npt.NDArray[np.uint32]:
        rng = self.rng
        if self.model == "resample":
            return self.real_hashes[rng.integers(0, len(self.real_hashes), count)]
        if self.model == "uniform":
            band = rng.choice(features.BANDS, size=count, p=self.band_share)
            low, high = self.high_range
            value = rng.integers(low, high + 1, count) * features.BANDS + band
            return value.astype(np.uint32)
        value = np.zeros(count, np.int64)
        for radix, (levels, share) in zip(_RADICES, self.digits, strict=True):
            value = value * radix + rng.choice(levels, size=count, p=share)
        return value.astype(np.uint32)

    def rows(
        self, first_id: int, tracks: int, rows_per_track: int
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]:
        """Keys and payload of ``tracks`` tracks from ``first_id`` on, in file order."""
        rng = self.rng
        count = tracks * rows_per_track
        file_ids = np.repeat(np.arange(first_id, first_id + tracks, dtype=np.int64), rows_per_track)
        track_frames = int(TRACK_SECONDS / features.FRAME_SECONDS)
        times = rng.integers(0, track_frames, count)
        spans = rng.integers(MIN_SPAN, MAX_SPAN + 1, count)
        keys = self.hashes(count)
        band = (keys % features.BANDS).astype(np.int64)
        low, high = self.logf_low[band], self.logf_high[band]
        logf = low + (rng.random(count) * (high - low + 1)).astype(np.int64)
        payload = pack_rows(file_ids, times, spans, logf)
        # The vectorised packing must give exactly index.pack's bits.
        first = slice(0, rows_per_track)
        quads = features.Quads(
            keys[first],
            times[first].astype(np.int32),
            spans[first].astype(np.int16),
            logf[first].astype(np.int16),
        )
        expected_keys, expected_payload = pack(first_id, quads)
        assert np.array_equal(expected_keys, keys[first])
        assert np.array_equal(expected_payload, payload[first])
        return keys, payload


# The hash's mixed radix, most significant field first (features.build_quads).
_RADICES = (
    features.RATIO_LEVELS,
    features.RATIO_LEVELS,
    features.DIFF_LEVELS,
    features.DIFF_LEVELS,
    features.DIFF_LEVELS,
    features.BANDS,
)


def _digits(hashes: npt.NDArray[np.uint32]) -> list[tuple[npt.NDArray[np.int64], Any]]:
    """Each hash field's values and their shares among the real rows."""
    rest = hashes.astype(np.int64)
    fields = []
    for radix in reversed(_RADICES):
        fields.append(rest % radix)
        rest //= radix
    result = []
    for values in reversed(fields):
        levels, counts = np.unique(values, return_counts=True)
        result.append((levels, counts / counts.sum()))
    return result


# Building the index (in a child process) ---------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    workdir: Path
    index: Path
    sources: list[Path]
    hours: float
    model: str
    seed: int
    segment_rows: int  # 0: as `flask library add` and compaction would leave them


@dataclass
class BuildReport:
    real_files: int
    real_seconds: float
    real_rows: int
    real_fingerprint_seconds: float
    rows_per_second: float
    peaks_per_second: float
    synthetic_files: int
    synthetic_seconds: float
    rows_per_track: int
    last_id: int
    rows: int
    segments: dict[str, int]
    write_seconds: float
    merge_seconds: float
    merges: int
    peak_rss_mib: float
    peak_anon_mib: float
    load: list[float]
    hash_stats: dict[str, Any] = field(default_factory=dict)


def build_index(options: BuildOptions) -> BuildReport:
    """Write the real and synthetic rows as segments; runs in its own process."""
    real = real_tracks(options.sources, options.workdir / "real" / "fingerprints.npz")
    rate = real.rows / real.seconds
    rows_per_track = round(rate * TRACK_SECONDS)
    synthetic_files = round(options.hours * 3600 / TRACK_SECONDS)
    first_synthetic = len(real.names) + 1
    last_id = len(real.names) + synthetic_files
    synthesizer = Synthesizer(real.all_quads(), options.model, options.seed)
    say(
        f"real tracks: {real.rows} rows in {real.seconds / 60:.1f} min = {rate:.1f} rows/s; "
        f"adding {synthetic_files} synthetic tracks of {rows_per_track} rows "
        f"({synthetic_files * TRACK_SECONDS / 3600:.0f} h, hash model {options.model})"
    )
    # Which files each segment holds: real ones first, a segment closed once it reaches
    # the limit (library.add commits a batch once it holds BATCH_ROWS rows).
    limit = options.segment_rows or BATCH_ROWS
    plan: list[list[int]] = [[]]
    rows_in = 0
    for file_id in range(1, last_id + 1):
        plan[-1].append(file_id)
        rows_in += len(real.quads[file_id - 1]) if file_id < first_synthetic else rows_per_track
        if rows_in >= limit and file_id < last_id:
            plan.append([])
            rows_in = 0

    store = SegmentStore(options.index)
    shutil.rmtree(options.index, ignore_errors=True)
    sizes: dict[str, int] = {}
    merges = 0
    with MemoryWatch() as watch:
        began = time.perf_counter()
        for number, file_ids in enumerate(plan):
            keys, payload, peaks = _segment_rows(
                real, synthesizer, file_ids, first_synthetic, rows_per_track
            )
            name = store.new_name()
            store.write(name, keys, payload, peaks)
            sizes[name] = len(keys)
            del keys, payload
            if number % 10 == 9 or number == len(plan) - 1:
                say(f"  {number + 1}/{len(plan)} segments written")
        write_seconds = time.perf_counter() - began
        began = time.perf_counter()
        if not options.segment_rows:
            live = np.ones(last_id + 1, bool)
            live[0] = False
            while groups := plan_merges(sizes):
                for names in groups:
                    say(f"  merging {len(names)} segments ({sum(sizes[n] for n in names)} rows)")
                    opened = [store.open(name) for name in names]
                    name, rows, _ = store.merge(opened, live)
                    del opened
                    store.delete(names)
                    for old in names:
                        del sizes[old]
                    sizes[name] = rows
                    merges += 1
        merge_seconds = time.perf_counter() - began
    return BuildReport(
        real_files=len(real.names),
        real_seconds=real.seconds,
        real_rows=real.rows,
        real_fingerprint_seconds=real.fingerprint_seconds,
        rows_per_second=rate,
        peaks_per_second=sum(len(p) for p in real.peaks) / real.seconds,
        synthetic_files=synthetic_files,
        synthetic_seconds=synthetic_files * TRACK_SECONDS,
        rows_per_track=rows_per_track,
        last_id=last_id,
        rows=sum(sizes.values()),
        segments=sizes,
        write_seconds=write_seconds,
        merge_seconds=merge_seconds,
        merges=merges,
        peak_rss_mib=mib(max_rss_kib()),
        peak_anon_mib=mib(watch.peak.get("RssAnon", 0)),
        load=load(),
        hash_stats=_hash_stats(real.all_quads().hashes),
    )


def _segment_rows(
    real: RealTracks,
    synthesizer: Synthesizer,
    file_ids: list[int],
    first_synthetic: int,
    rows_per_track: int,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64], PeakTable]:
    real_ids = [i for i in file_ids if i < first_synthetic]
    synthetic = [i for i in file_ids if i >= first_synthetic]
    packed = [pack(i, real.quads[i - 1]) for i in real_ids]
    total = sum(len(k) for k, _ in packed) + len(synthetic) * rows_per_track
    keys = np.empty(total, np.uint32)
    payload = np.empty(total, np.uint64)
    at = 0
    for part_keys, part_payload in packed:
        keys[at : at + len(part_keys)] = part_keys
        payload[at : at + len(part_keys)] = part_payload
        at += len(part_keys)
    tracks_per_chunk = max(CHUNK_ROWS // rows_per_track, 1)
    for chunk in range(0, len(synthetic), tracks_per_chunk):
        count = min(tracks_per_chunk, len(synthetic) - chunk)
        part_keys, part_payload = synthesizer.rows(synthetic[chunk], count, rows_per_track)
        keys[at : at + len(part_keys)] = part_keys
        payload[at : at + len(part_keys)] = part_payload
        at += len(part_keys)
    # Synthetic files have no peaks: an empty entry each, as a silent file would have.
    no_peaks = features.Peaks(
        np.empty(0, np.int32),
        np.empty(0, np.float32),
        np.empty(0, np.float32),
        np.empty(0, np.float32),
    )
    entries = [(i, real.peaks[i - 1]) for i in real_ids] + [(i, no_peaks) for i in synthetic]
    return keys, payload, PeakTable.of(entries)


def _hash_stats(hashes: npt.NDArray[np.uint32]) -> dict[str, Any]:
    """How concentrated the real hashes are: the resample model's collision pressure."""
    _, counts = np.unique(hashes, return_counts=True)
    share = counts / counts.sum()
    return {
        "real_rows": len(hashes),
        "distinct_values": len(counts),
        "expected_same_hash_share": float(np.sum(share**2)),
        "top_1pct_values_row_share": float(
            np.sort(counts)[::-1][: max(len(counts) // 100, 1)].sum() / counts.sum()
        ),
    }


# The mix -----------------------------------------------------------------------------------


def hour_mix(sources: Sequence[Path], workdir: Path, seed: int, given: Path | None) -> BenchMix:
    """The mix to identify with its truth: ``given``, one built earlier, or a new one."""
    if given is not None:
        truth_path = given.with_suffix(".truth.json")
        if not truth_path.is_file():
            raise BenchError(f"--mix: no ground truth {truth_path} next to {given}")
        mix = BenchMix("given", "given mix", given.resolve(), MixPlan(segments=[]))
        mix.truth = read_truth(truth_path)
        return mix
    durations = {source: probe_duration(source) for source in sources}
    # Drawn exactly as bench_identify.py --hour draws it, so both benchmarks share the mix.
    rng = random.Random(f"{seed}:hour")  # noqa: S311
    crossfade = round(rng.uniform(min(MIN_CROSSFADE, HOUR_CROSSFADE), HOUR_CROSSFADE), 1)
    plan = hour_plan(sources, durations, rng=rng, crossfade=crossfade)
    path = workdir / "mixes" / f"hour-seed{seed}.mp3"
    mix = BenchMix("hour", "1-hour mix", path, plan)
    truth_path = path.with_suffix(".truth.json")
    if path.is_file() and truth_path.is_file():
        mix.truth = read_truth(truth_path)
        say(f"reusing the mix {path}")
        return mix
    path.parent.mkdir(parents=True, exist_ok=True)
    say("building the hour mix")
    build_all([mix])
    return mix


# Identifying -------------------------------------------------------------------------------


@dataclass
class LookupCount:
    calls: int = 0
    probes: int = 0
    rows: int = 0
    real_rows: int = 0
    seconds: float = 0.0


def count_lookups(reader: IndexReader, last_real_id: int) -> LookupCount:
    """Wrap the reader's row search: query hashes in, index rows out (before the speed and
    pitch tests), time spent."""
    count = LookupCount()
    rows_of = reader._rows  # instrumenting the hot spot

    def counted(hashes: npt.NDArray[np.uint32]) -> Any:
        began = time.perf_counter()
        found = rows_of(hashes)
        count.seconds += time.perf_counter() - began
        count.calls += 1
        count.probes += len(hashes)
        count.rows += len(found[0])
        file_ids = unpack(found[0], found[1]).file_ids
        count.real_rows += int(np.count_nonzero(file_ids <= last_real_id))
        return found

    reader._rows = counted  # type: ignore[method-assign]
    return count


def drop_from_page_cache(index: Path) -> None:
    """Ask the kernel to forget the index's cached pages, as after a reboot."""
    for path in index.rglob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@dataclass
class IdentifyRun:
    label: str
    mix_seconds: float
    wall: float
    x_realtime: float
    lookup: LookupCount
    memory_peak_mib: dict[str, float]
    load_before: list[float]
    load_after: list[float]
    reported: list[Reported]
    score: Score
    profile: list[dict[str, Any]] | None = None


def identify_run(
    label: str,
    reader: IndexReader,
    mix: BenchMix,
    names: Sequence[str],
    profile_to: Path | None = None,
) -> IdentifyRun:
    """Identify the mix once in this process and score it."""
    count = count_lookups(reader, len(names))
    profiler = cProfile.Profile() if profile_to is not None else None
    load_before = load()
    with MemoryWatch() as watch:
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        tracklist = engine.identify(reader, audio.decode(mix.path), reference_peaks=reader.peaks)
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - began
    del reader._rows  # back to the class's method
    reported = [
        Reported(
            path=names[found.file_id - 1]
            if found.file_id <= len(names)
            else f"synthetic-{found.file_id:06d}.ogg",
            start=found.start,
            end=found.end,
            speed=found.speed,
            pitch=found.pitch,
            confidence=found.confidence,
            title=None,
        )
        for found in tracklist.found
    ]
    run = IdentifyRun(
        label=label,
        mix_seconds=tracklist.duration,
        wall=wall,
        x_realtime=tracklist.duration / wall,
        lookup=count,
        memory_peak_mib={key: mib(value) for key, value in watch.peak.items()},
        load_before=load_before,
        load_after=load(),
        reported=reported,
        score=score(mix.truth, reported),
    )
    if profiler is not None and profile_to is not None:
        profiler.dump_stats(profile_to)
        run.profile = _top_functions(profiler)
    return run


def _top_functions(profiler: cProfile.Profile) -> list[dict[str, Any]]:
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (path, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(path)}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 3),
                "cumulative_s": round(cumulative, 3),
            }
        )
    rows.sort(key=lambda row: -row["cumulative_s"])
    return rows[: PROFILE_LINES * 3]


def _short(path: str) -> str:
    for marker in ("set2tracks/", "numpy/", "scipy/"):
        if marker in path:
            return marker + path.split(marker, 1)[1]
    return Path(path).name if path.startswith("/") else path


def accuracy(run: IdentifyRun) -> dict[str, Any]:
    """Recall, precision and errors, as bench_identify.py's ``summarize`` gives them."""
    result = run.score
    matches = result.matches
    speed_errors = [m.speed_error for m in matches if m.speed_error is not None]
    false_synthetic = sum(run.reported[i].path.startswith("synthetic-") for i in result.false)
    return {
        "true_tracks": result.truth_count,
        "reported": result.reported_count,
        "matched": len(matches),
        "recall": len(matches) / result.truth_count if result.truth_count else None,
        "precision": len(matches) / result.reported_count if result.reported_count else None,
        "false_entries": len(result.false),
        "false_synthetic": false_synthetic,
        "median_start_error_s": _median([m.start_error for m in matches]),
        "median_speed_error_pct": _median(speed_errors),
        "pitch_right_share": sum(m.pitch_right for m in matches) / len(matches)
        if matches
        else None,
    }


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# Reporting ---------------------------------------------------------------------------------


def disk_bytes(index: Path) -> dict[str, int]:
    sizes = {"keys": 0, "payload": 0, "peaks": 0}
    for path in index.rglob("*.npy"):
        part = path.stem if path.stem in _SEGMENT_PARTS else "peaks"
        sizes[part] += path.stat().st_size
    return sizes


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _gib(size: float) -> str:
    return f"{size / 1024**3:.2f} GiB"


def report(args: argparse.Namespace, figures: dict[str, Any]) -> list[str]:
    build = figures["build"]
    disk = figures["disk_bytes"]
    opened = figures["open"]
    runs = figures["identify"]
    cold, warm = runs[0], runs[1]
    acc = warm["accuracy"]
    host = figures["machine_name"]
    hours = (build["real_seconds"] + build["synthetic_seconds"]) / 3600
    files = build["real_files"] + build["synthetic_files"]
    peaks_all = disk["projected_peaks_all_files"]
    lines = [
        f"Set2Tracks index scale benchmark, seed {args.seed}, hash model {args.hash_model}, "
        f"engine {figures['engine']}",
        f"Machine: {host}",
        "",
        f"Index: {files} files ({build['real_files']} real, {build['synthetic_files']} synthetic "
        f"of {TRACK_SECONDS:g} s), {hours:.1f} h, {build['rows']:,} rows "
        f"({build['rows_per_second']:.1f} rows/s of audio, measured on the real tracks), "
        f"{len(build['segments'])} segment(s): "
        + ", ".join(f"{rows:,}" for rows in sorted(build["segments"].values(), reverse=True)),
        f"  on disk: keys {_gib(disk['keys'])} + payload {_gib(disk['payload'])} + peaks "
        f"{disk['peaks'] / 1024**2:.1f} MiB (real files only) = {_gib(disk['total'])}; "
        f"with peaks for every file ({build['peaks_per_second']:.1f}/s) "
        f"{_gib(disk['keys'] + disk['payload'] + peaks_all)}",
        f"  build: {build['write_seconds']:.1f} s writing "
        f"{len(build['segments']) if not build['merges'] else 'batch'} segments + "
        f"{build['merge_seconds']:.1f} s merging ({build['merges']} merge(s)); "
        f"peak RSS {build['peak_rss_mib']:.0f} MiB, peak RssAnon {build['peak_anon_mib']:.0f} MiB"
        f" (build process); load {build['load']}",
        f"  real tracks fingerprinted at "
        f"{build['real_seconds'] / build['real_fingerprint_seconds']:.0f}x real time",
        f"  real hashes: {build['hash_stats']['distinct_values']:,} distinct values in "
        f"{build['hash_stats']['real_rows']:,} rows; the top 1 % of values hold "
        f"{build['hash_stats']['top_1pct_values_row_share'] * 100:.1f} % of the rows",
        "",
        f"Opening: {opened['seconds']:.2f} s; VmRSS {opened['VmRSS']:.0f} MiB, RssAnon "
        f"{opened['RssAnon']:.0f} MiB, RssFile {opened['RssFile']:.0f} MiB",
    ]
    for run in runs:
        lookup = run["lookup"]
        memory = run["memory_peak_mib"]
        lines += [
            "",
            f"Identifying the {run['mix_seconds'] / 60:.1f}-minute mix ({run['label']}): "
            f"{run['wall']:.1f} s = {run['x_realtime']:.0f}x real time "
            f"(target >= {IDENTIFY_TARGET:g}x: "
            f"{'met' if run['x_realtime'] >= IDENTIFY_TARGET else 'MISSED'}); "
            f"load {run['load_before']} -> {run['load_after']}",
            f"  lookups: {lookup['calls']} calls, {lookup['probes']:,} query hashes "
            f"(per quad: its band, and the nearest other band), {lookup['rows']:,} rows = "
            f"{lookup['rows'] / max(lookup['probes'], 1):.1f} candidates per query hash "
            f"({(lookup['rows'] - lookup['real_rows']) / max(lookup['probes'], 1):.1f} "
            f"synthetic); {lookup['seconds']:.1f} s searching and gathering rows",
            f"  memory peak: VmRSS {memory.get('VmRSS', 0):.0f} MiB (index pages count once "
            f"touched), RssAnon {memory.get('RssAnon', 0):.0f} MiB, RssFile "
            f"{memory.get('RssFile', 0):.0f} MiB",
        ]
    lines += [
        f"  process ru_maxrss {figures['max_rss_mib']:.0f} MiB; anonymous memory target "
        f"< {MEMORY_TARGET_GIB:g} GiB: "
        + (
            "met"
            if max(r["memory_peak_mib"].get("RssAnon", 0) for r in runs) < MEMORY_TARGET_GIB * 1024
            else "MISSED"
        ),
        "",
        f"Accuracy (warm run): {acc['matched']}/{acc['true_tracks']} right, "
        f"{acc['reported']} reported; recall {_fmt(acc['recall'], '.3f')}, precision "
        f"{_fmt(acc['precision'], '.3f')} ({acc['false_synthetic']} of {acc['false_entries']} "
        f"false entries name a synthetic track), median start error "
        f"{_fmt(acc['median_start_error_s'], '.2f', ' s')}, median speed error "
        f"{_fmt(acc['median_speed_error_pct'], '.3f', ' %')}, pitch right "
        f"{_fmt(acc['pitch_right_share'], '.2f')}",
    ]
    profile = next((run["profile"] for run in runs if run.get("profile")), None)
    if profile:
        lines += ["", "Profile of the last run, by cumulative time:"]
        lines += [
            f"  {row['cumulative_s']:8.2f} s cum {row['own_s']:8.2f} s own "
            f"{row['calls']:>9} calls  {row['function']}"
            for row in profile[:PROFILE_LINES]
        ]
    memory_peak = max(r["memory_peak_mib"].get("VmRSS", 0) for r in runs)
    anon_peak = max(r["memory_peak_mib"].get("RssAnon", 0) for r in runs)
    lines += [
        "",
        "README row:",
        "",
        "| library | hash model | index rows | on disk | build (peak RSS) | identify peak RSS "
        "(anonymous) | identify, cold / warm | candidates per query hash | recall "
        "| precision | median start error | machine (load) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {files:,} files, {hours:.0f} h | {args.hash_model} | {build['rows'] / 1e6:.0f} M "
        f"| {_gib(disk['total'])} | {build['write_seconds'] + build['merge_seconds']:.0f} s "
        f"({build['peak_rss_mib'] / 1024:.1f} GiB) | {memory_peak / 1024:.2f} GiB "
        f"({anon_peak / 1024:.2f} GiB) | {cold['x_realtime']:.0f}x / {warm['x_realtime']:.0f}x "
        f"| {warm['lookup']['rows'] / max(warm['lookup']['probes'], 1):.1f} "
        f"| {_fmt(acc['recall'], '.3f')} | {_fmt(acc['precision'], '.3f')} "
        f"| {_fmt(acc['median_start_error_s'], '.2f', ' s')} "
        f"| {host} (load {warm['load_before'][0]:.1f}) |",
    ]
    return lines


# Main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the own-library index at 10,000-track scale with synthetic rows."
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=700.0,
        help="hours of synthetic tracks next to the real ones (default 700)",
    )
    parser.add_argument(
        "--hash-model",
        choices=HASH_MODELS,
        default="resample",
        help="how synthetic hashes are drawn (default resample; see the docstring)",
    )
    parser.add_argument(
        "--segment-rows",
        type=int,
        default=0,
        help="rows per segment, none merged (default: batches merged as the library does)",
    )
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the index (and a temporary work folder)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--mix", type=Path, help="identify this mix (its truth JSON next to it, .truth.json)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run a third identification under cProfile"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--pk3", type=Path, default=PK3, help=f"music archive (default {PK3})")
    args = parser.parse_args(argv)
    if args.hours < 0:
        parser.error("--hours must not be negative")
    if args.segment_rows < 0:
        parser.error("--segment-rows must not be negative")
    if args.mix is not None and not args.mix.is_file():
        parser.error(f"--mix: {args.mix} is not a file")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if (problem := missing_prerequisite(args.pk3)) is not None:
        return _fail(problem)
    workdir, temporary = work_folder(args.workdir, "s2t-scale-")
    index = workdir / "index"
    try:
        return run_bench(args, workdir, index)
    except BenchError as error:
        return _fail(str(error))
    finally:
        if args.keep:
            say(f"work folder kept: {workdir}")
        elif temporary:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(index, ignore_errors=True)
            say(f"index deleted; real fingerprints and mix kept in {workdir}")


def _fail(message: str) -> int:
    say(f"bench_index_scale: error: {message}")
    return 1


def run_bench(args: argparse.Namespace, workdir: Path, index: Path) -> int:
    version = engine_version()
    say(f"work folder {workdir}; engine {version}; load {load()}")
    sources = extract_music(args.pk3, workdir / "music")
    expected_rows = 90 * 3600 * (args.hours + 2)
    free = shutil.disk_usage(workdir).free
    needed = expected_rows * 12 * (1 if args.segment_rows else 2.2)
    if free < needed:
        raise BenchError(
            f"{workdir} has {free / 1024**3:.1f} GiB free; about {needed / 1024**3:.1f} GiB "
            "are needed: pick a --workdir with more space"
        )
    mix = hour_mix(sources, workdir, args.seed, args.mix)

    options = BuildOptions(
        workdir=workdir,
        index=index,
        sources=sources,
        hours=args.hours,
        model=args.hash_model,
        seed=args.seed,
        segment_rows=args.segment_rows,
    )
    # A process of its own: the build's memory is its peak, not this process's.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        build = pool.submit(build_index, options).result()
    say(
        f"index built: {build.rows:,} rows in {len(build.segments)} segment(s), "
        f"peak RSS {build.peak_rss_mib:.0f} MiB"
    )

    drop_from_page_cache(index)
    store = SegmentStore(index)
    began = time.perf_counter()
    reader = IndexReader([store.open(name) for name in build.segments], range(1, build.last_id + 1))
    opened = {key: mib(value) for key, value in proc_status().items()}
    opened["seconds"] = time.perf_counter() - began

    names = [source.name for source in sources]
    runs = []
    for label in ("cold page cache", "warm page cache"):
        say(f"identifying {mix.path.name} ({label}); load {load()}")
        runs.append(identify_run(label, reader, mix, names))
        say(f"  {runs[-1].x_realtime:.0f}x real time")
    if args.profile:
        say("identifying once more under cProfile")
        runs.append(
            identify_run("warm, under cProfile", reader, mix, names, workdir / "identify.prof")
        )

    disk = disk_bytes(index)
    disk["total"] = sum(disk.values())
    disk["projected_peaks_all_files"] = round(
        build.peaks_per_second * (build.real_seconds + build.synthetic_seconds) * 8
    )
    figures: dict[str, Any] = {
        "machine": machine(),
        "machine_name": machine_name(machine()),
        "engine": version,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "workdir": str(workdir),
        "mix": str(mix.path),
        "build": asdict(build),
        "disk_bytes": disk,
        "open": opened,
        "identify": [
            {
                **asdict(run),
                "score": None,
                "accuracy": accuracy(run),
                "missed": [asdict(mix.truth[i]) for i in run.score.missed],
                "false": [asdict(run.reported[i]) for i in run.score.false],
            }
            for run in runs
        ],
        "max_rss_mib": mib(max_rss_kib()),
    }
    lines = report(args, figures)
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
        say(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
