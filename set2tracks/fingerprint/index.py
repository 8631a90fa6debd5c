"""The fingerprint index: immutable segment files that every worker memory-maps.

A segment is a folder holding two arrays in numpy's ``.npy`` format, sorted together by hash:

- ``keys.npy``: the quad hashes (uint32);
- ``payload.npy``: what a match needs (uint64): library file id (24 bits), anchor frame
  (22 bits: 18 hours at 16 ms), span in frames (7 bits), anchor log-frequency (10 bits).

12 bytes per fingerprint. Next to them, each file's spectral peaks (``peak_*.npy``, 8 bytes a
peak, about 30 a second) let ``refine.py`` find where a track fades in without reading the
music again: workers only need this folder, not the library.

Segments are written once (to a temporary name, flushed to disk, then renamed) and never
changed; which segments are live is the database's business
(``FingerprintSegment`` rows, committed in the same transaction as the library files whose
fingerprints they hold). A segment folder without a row is the leftover of an interrupted
run and is deleted by the next writer. Removing a library file leaves its fingerprints in
place until segments are merged: lookups drop ids that are no longer live. Liveness is per
segment (the database records which segment holds each file's fingerprints): on SQLite a
removed file's id can be given to a new file, and the old file's rows, still in an older
segment, must not answer for the new one.

Nothing here knows Flask or SQL: the library service (``library.py``) does the bookkeeping.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from set2tracks.fingerprint.features import LOGF_FLOOR, LOGF_PAYLOAD_STEPS, Peaks, Quads

FILE_BITS = 24
TIME_BITS = 22
SPAN_BITS = 7
LOGF_BITS = 10
MAX_FILE_ID = (1 << FILE_BITS) - 1
MAX_FRAME = (1 << TIME_BITS) - 1

_TIME_SHIFT = SPAN_BITS + LOGF_BITS
_FILE_SHIFT = TIME_BITS + _TIME_SHIFT

# Lookups skip a hash shared by more rows than this share of a segment (and at least
# MIN_BUCKET_CAP): about a thousand rows in a 10,000-track index.
BUCKET_CAP_SHARE = 5e-6
MIN_BUCKET_CAP = 256
# Merging stops at this size: a merge sorts in memory, about 30 bytes a row at most.
MAX_SEGMENT_ROWS = 64 << 20

SEGMENTS_DIR = "segments"
LOCK_FILE = ".writer.lock"
_TEMP_SUFFIX = ".tmp"

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

PEAK_LOGF_STEPS = 1024  # per octave above 110 Hz, in a uint16
PEAK_LEVEL_STEPS = 256  # per natural-log unit, in an int16
_PEAK_PARTS = ("peak_files", "peak_times", "peak_logf", "peak_level")


@dataclass(frozen=True)
class PeakTable:
    """Peaks of several files: ``files[i]`` owns the next ``counts[i]`` rows, in time order."""

    files: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    times: npt.NDArray[np.int32]
    logf: npt.NDArray[np.uint16]
    level: npt.NDArray[np.int16]

    @staticmethod
    def of(entries: Sequence[tuple[int, Peaks]]) -> PeakTable:
        parts = [peaks for _, peaks in entries]
        return PeakTable(
            files=np.array([file_id for file_id, _ in entries], np.int64),
            counts=np.array([len(peaks) for peaks in parts], np.int64),
            times=np.concatenate([p.times for p in parts]).astype(np.int32),
            logf=np.clip(
                np.rint((np.concatenate([p.logf for p in parts]) - LOGF_FLOOR) * PEAK_LOGF_STEPS),
                0,
                65535,
            ).astype(np.uint16),
            level=np.clip(
                np.rint(np.concatenate([p.level for p in parts]) * PEAK_LEVEL_STEPS),
                -32768,
                32767,
            ).astype(np.int16),
        )

    def row_files(self) -> npt.NDArray[np.int64]:
        return np.repeat(self.files, self.counts)


class IndexStoreError(Exception):
    """The index on disk is unusable: the message says what to do."""


def pack(file_id: int, quads: Quads) -> tuple[U32, U64]:
    """The (keys, payload) rows of one file's quads; anchors past 18 hours are dropped."""
    if not 0 < file_id <= MAX_FILE_ID:
        raise ValueError(f"library file id {file_id} does not fit the index")
    keep = quads.times <= MAX_FRAME
    payload = (
        (np.uint64(file_id) << np.uint64(_FILE_SHIFT))
        | (quads.times[keep].astype(np.uint64) << np.uint64(_TIME_SHIFT))
        | (
            np.clip(quads.spans[keep], 0, (1 << SPAN_BITS) - 1).astype(np.uint64)
            << np.uint64(LOGF_BITS)
        )
        | np.clip(quads.logf[keep], 0, (1 << LOGF_BITS) - 1).astype(np.uint64)
    )
    return quads.hashes[keep], payload.astype(np.uint64)


@dataclass(frozen=True)
class Matched:
    """Rows that passed the speed and pitch tests, decoded."""

    query: npt.NDArray[np.int64]
    file_ids: npt.NDArray[np.int64]
    times: npt.NDArray[np.int64]  # the reference anchor's frame
    speed: npt.NDArray[np.float32]
    log_pitch: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Candidates:
    """Index rows found for query quads: ``query`` indexes the query arrays."""

    query: npt.NDArray[np.int64]
    file_ids: npt.NDArray[np.int64]
    times: npt.NDArray[np.int64]
    spans: npt.NDArray[np.int64]
    logf: npt.NDArray[np.int64]


def unpack(query: npt.NDArray[np.int64], payload: U64) -> Candidates:
    p = payload.astype(np.int64)
    return Candidates(
        query=query,
        file_ids=p >> _FILE_SHIFT,
        times=(p >> _TIME_SHIFT) & MAX_FRAME,
        spans=(p >> LOGF_BITS) & ((1 << SPAN_BITS) - 1),
        logf=p & ((1 << LOGF_BITS) - 1),
    )


@dataclass(frozen=True)
class Segment:
    name: str
    keys: U32
    payload: U64
    peaks: PeakTable

    def __len__(self) -> int:
        return len(self.keys)

    def file_ids(self) -> npt.NDArray[np.int64]:
        return np.unique(self.payload >> np.uint64(_FILE_SHIFT)).astype(np.int64)


class SegmentStore:
    """The segment folders under ``root``: writing, opening, merging, cleaning up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.segments_dir = root / SEGMENTS_DIR

    def new_name(self) -> str:
        return f"seg-{uuid.uuid4().hex}"

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time across processes; readers never wait."""
        self.segments_dir.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexStoreError(
                    f"another process is writing the index in {self.root}: wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write(self, name: str, keys: U32, payload: U64, peaks: PeakTable) -> int:
        """Sort and store a segment durably under ``name``; return its size in bytes."""
        order = np.argsort(keys, kind="stable")
        final = self.segments_dir / name
        temporary = self.segments_dir / (name + _TEMP_SUFFIX)
        temporary.mkdir(parents=True)
        arrays: dict[str, npt.NDArray[Any]] = {
            "keys": keys[order],
            "payload": payload[order],
            "peak_files": np.stack([peaks.files, peaks.counts], axis=1),
            "peak_times": peaks.times,
            "peak_logf": peaks.logf,
            "peak_level": peaks.level,
        }
        size = 0
        for part, array in arrays.items():
            with (temporary / f"{part}.npy").open("wb") as handle:
                np.save(handle, np.ascontiguousarray(array))
                handle.flush()
                os.fsync(handle.fileno())
            size += array.nbytes
        _fsync_dir(temporary)
        temporary.rename(final)
        _fsync_dir(self.segments_dir)
        return int(size)

    def open(self, name: str) -> Segment:
        folder = self.segments_dir / name
        try:
            keys = np.load(folder / "keys.npy", mmap_mode="r")
            payload = np.load(folder / "payload.npy", mmap_mode="r")
            files, times, logf, level = (
                np.load(folder / f"{part}.npy", mmap_mode="r") for part in _PEAK_PARTS
            )
        except (OSError, ValueError) as error:
            raise IndexStoreError(
                f"index segment {name} in {self.segments_dir} is missing or damaged ({error});"
                " the files it held must be indexed again"
            ) from error
        table = np.asarray(files).reshape(-1, 2)
        peaks = PeakTable(table[:, 0].copy(), table[:, 1].copy(), times, logf, level)
        return Segment(name, keys, payload, peaks)

    def merge(
        self,
        segments: Sequence[Segment],
        live: npt.NDArray[np.bool_] | Sequence[npt.NDArray[np.bool_]] | None,
    ) -> tuple[str, int, int]:
        """Write one segment of the rows of ``segments`` whose file is live: name, rows, bytes.

        ``live`` is one mask of live file ids for every segment, or one mask per segment.
        """
        masks = [live] * len(segments) if isinstance(live, np.ndarray) else live
        keys_parts, payload_parts, peak_parts = [], [], []
        for position, segment in enumerate(segments):
            keys, payload = np.asarray(segment.keys), np.asarray(segment.payload)
            peak_files = segment.peaks.row_files()
            times, logf, level = (
                np.asarray(segment.peaks.times),
                np.asarray(segment.peaks.logf),
                np.asarray(segment.peaks.level),
            )
            if masks is not None:
                keep = _alive(masks[position], (payload >> np.uint64(_FILE_SHIFT)).astype(np.int64))
                keys, payload = keys[keep], payload[keep]
                keep = _alive(masks[position], peak_files)
                peak_files, times, logf, level = (
                    peak_files[keep],
                    times[keep],
                    logf[keep],
                    level[keep],
                )
            keys_parts.append(keys)
            payload_parts.append(payload)
            peak_parts.append((peak_files, times, logf, level))
        keys = np.concatenate(keys_parts)
        payload = np.concatenate(payload_parts)
        peak_files, times, logf, level = (
            np.concatenate([part[column] for part in peak_parts]) for column in range(4)
        )
        # Files never span segments, so a stable sort by file keeps each file's peaks in order.
        order = np.argsort(peak_files, kind="stable")
        files, counts = np.unique(peak_files[order], return_counts=True)
        table = PeakTable(files, counts, times[order], logf[order], level[order])
        name = self.new_name()
        size = self.write(name, keys, payload, table)
        return name, len(keys), size

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            path = self.segments_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def sweep(self, committed: set[str]) -> list[str]:
        """Delete segment folders no committed row names (interrupted writes, merged-away)."""
        if not self.segments_dir.is_dir():
            return []
        stale = [entry.name for entry in self.segments_dir.iterdir() if entry.name not in committed]
        self.delete(stale)
        return stale

    def size_on_disk(self) -> int:
        if not self.segments_dir.is_dir():
            return 0
        return sum(path.stat().st_size for path in self.segments_dir.rglob("*.npy"))


def _alive(live: npt.NDArray[np.bool_], ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return (ids < len(live)) & live[np.minimum(ids, len(live) - 1)]


def plan_merges(
    sizes: dict[str, int],
    fan_in: int = 4,
    base: int = 1 << 20,
    max_rows: int = MAX_SEGMENT_ROWS,
) -> list[list[str]]:
    """Size-tiered merging: every ``fan_in`` segments of one size tier are merged into one.

    Tier = how many times ``fan_in`` fits between ``base`` rows and the segment's rows, so
    every row is rewritten about log_fan_in(index rows / base) times over the index's life.
    A merge whose result would pass ``max_rows`` is not done: a few big segments cost a
    lookup little, and merging them would need their whole size in memory.
    """
    tiers: dict[int, list[str]] = {}
    for name, rows in sizes.items():
        tier = 0
        while rows >= base * fan_in ** (tier + 1):
            tier += 1
        tiers.setdefault(tier, []).append(name)
    groups = []
    for names in tiers.values():
        names = sorted(names, key=lambda name: (sizes[name], name))
        for first in range(0, len(names) - fan_in + 1, fan_in):
            group = names[first : first + fan_in]
            if sum(sizes[name] for name in group) <= max_rows:
                groups.append(group)
    return groups


def live_mask(ids: Iterable[int]) -> npt.NDArray[np.bool_]:
    """A mask indexed by file id, true for ``ids``."""
    found = np.fromiter(ids, dtype=np.int64)
    mask = np.zeros(int(found.max()) + 1 if len(found) else 1, dtype=bool)
    mask[found] = True
    return mask


class IndexReader:
    """The live segments, memory-mapped, and the live file ids: what a lookup needs.

    ``live_ids`` are the ids live in every segment, or, by segment name, the ids whose
    fingerprints each segment holds for the library now (a segment not named has none).
    """

    def __init__(
        self, segments: Sequence[Segment], live_ids: Iterable[int] | Mapping[str, Iterable[int]]
    ) -> None:
        self.segments = list(segments)
        if isinstance(live_ids, Mapping):
            self._live = [live_mask(live_ids.get(segment.name, ())) for segment in self.segments]
        else:
            everywhere = live_mask(live_ids)
            self._live = [everywhere] * len(self.segments)
        # Where each live file's peaks are: segment, first row, row count.
        self._peak_rows: dict[int, tuple[PeakTable, int, int]] = {}
        for segment, live in zip(self.segments, self._live, strict=True):
            table = segment.peaks
            starts = np.cumsum(table.counts) - table.counts
            alive = _alive(live, np.asarray(table.files, np.int64))
            for file_id, start, count, keep in zip(
                table.files, starts, table.counts, alive, strict=True
            ):
                if keep:
                    self._peak_rows[int(file_id)] = (table, int(start), int(count))

    def peaks(self, file_id: int, first_frame: int, last_frame: int) -> Peaks | None:
        """The stored peaks of a file between two of its frames, or None if it has none."""
        where = self._peak_rows.get(file_id)
        if where is None:
            return None
        table, start, count = where
        times = table.times[start : start + count]
        lo, hi = np.searchsorted(times, [first_frame, last_frame])
        rows = slice(start + int(lo), start + int(hi))
        logf = (np.asarray(table.logf[rows]) / PEAK_LOGF_STEPS + LOGF_FLOOR).astype(np.float32)
        level = (np.asarray(table.level[rows]) / PEAK_LEVEL_STEPS).astype(np.float32)
        return Peaks(np.asarray(table.times[rows]), logf, np.zeros_like(level), level)

    def lookup(self, hashes: U32) -> Candidates:
        """Every live index row whose hash equals one of ``hashes``."""
        query, payload = self._rows(hashes)
        return unpack(query, payload)

    def matches(
        self,
        hashes: U32,
        spans: npt.NDArray[np.float32],
        logf: npt.NDArray[np.int16],
        speeds: tuple[float, float],
        max_log_pitch: float,
    ) -> Matched:
        """Rows for query quads whose playback speed and pitch fall in range.

        ``spans[i]`` and ``logf[i]`` describe the quad of ``hashes[i]``. The two tests run on
        the packed rows before anything else is decoded: in a big library most rows fail
        them, and decoding is what costs.
        """
        query, payload = self._rows(hashes)
        packed = payload.view(np.int64)  # below 2**63: the file id has 24 bits
        speed = ((packed >> LOGF_BITS) & ((1 << SPAN_BITS) - 1)).astype(np.float32) / spans[query]
        keep = (speed >= speeds[0]) & (speed <= speeds[1])
        packed, query, speed = packed[keep], query[keep], speed[keep]
        log_pitch = (logf[query] - (packed & ((1 << LOGF_BITS) - 1))).astype(np.float32)
        log_pitch /= LOGF_PAYLOAD_STEPS
        files = packed >> _FILE_SHIFT
        keep = np.abs(log_pitch) <= max_log_pitch
        packed = packed[keep]
        return Matched(
            query=query[keep],
            file_ids=files[keep],
            times=(packed >> _TIME_SHIFT) & MAX_FRAME,
            speed=speed[keep],
            log_pitch=log_pitch[keep],
        )

    def _rows(self, hashes: U32) -> tuple[npt.NDArray[np.int64], U64]:
        """The live rows of every segment for ``hashes``: (index into ``hashes``, payload)."""
        order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[order]
        queries: list[npt.NDArray[np.int64]] = []
        payloads: list[U64] = []
        for segment, live in zip(self.segments, self._live, strict=True):
            lo = np.searchsorted(segment.keys, sorted_hashes, side="left")
            hi = np.searchsorted(segment.keys, sorted_hashes, side="right")
            counts = hi - lo
            # A hash that thousands of rows share says next to nothing about which track
            # plays, and would cost more than all the others together: skip it.
            counts[counts > max(MIN_BUCKET_CAP, int(len(segment) * BUCKET_CAP_SHARE))] = 0
            total = int(counts.sum())
            if not total:
                continue
            which = np.repeat(np.arange(len(sorted_hashes)), counts)
            rows = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
            payload = np.asarray(segment.payload[rows])
            alive = _alive(live, (payload >> np.uint64(_FILE_SHIFT)).astype(np.int64))
            queries.append(order[which][alive])
            payloads.append(payload[alive])
        if not queries:
            return np.empty(0, np.int64), np.empty(0, np.uint64)
        return np.concatenate(queries), np.concatenate(payloads)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
