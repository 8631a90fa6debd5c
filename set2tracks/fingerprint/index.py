"""The fingerprint index: immutable segment files that every worker memory-maps.

A segment is a folder holding two arrays in numpy's ``.npy`` format, sorted together by hash:

- ``keys.npy``: the quad hashes (uint32);
- ``payload.npy``: what a match needs (uint64): library file id (24 bits), anchor frame
  (22 bits: 18 hours at 16 ms), span in frames (7 bits), anchor log-frequency (10 bits).

12 bytes per fingerprint. Segments are written once (to a temporary name, flushed to disk,
then renamed) and never changed; which segments are live is the database's business
(``FingerprintSegment`` rows, committed in the same transaction as the library files whose
fingerprints they hold). A segment folder without a row is the leftover of an interrupted
run and is deleted by the next writer. Removing a library file leaves its fingerprints in
place until segments are merged: lookups drop ids that are no longer live.

Nothing here knows Flask or SQL: the library service (``library.py``) does the bookkeeping.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from set2tracks.fingerprint.features import Quads

FILE_BITS = 24
TIME_BITS = 22
SPAN_BITS = 7
LOGF_BITS = 10
MAX_FILE_ID = (1 << FILE_BITS) - 1
MAX_FRAME = (1 << TIME_BITS) - 1

_TIME_SHIFT = SPAN_BITS + LOGF_BITS
_FILE_SHIFT = TIME_BITS + _TIME_SHIFT

SEGMENTS_DIR = "segments"
LOCK_FILE = ".writer.lock"
_TEMP_SUFFIX = ".tmp"

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]


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

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.payload.nbytes)

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

    def write(self, name: str, keys: U32, payload: U64) -> int:
        """Sort and store a segment durably under ``name``; return its size in bytes."""
        order = np.argsort(keys, kind="stable")
        final = self.segments_dir / name
        temporary = self.segments_dir / (name + _TEMP_SUFFIX)
        temporary.mkdir(parents=True)
        for filename, array in (("keys.npy", keys[order]), ("payload.npy", payload[order])):
            with (temporary / filename).open("wb") as handle:
                np.save(handle, np.ascontiguousarray(array))
                handle.flush()
                os.fsync(handle.fileno())
        _fsync_dir(temporary)
        temporary.rename(final)
        _fsync_dir(self.segments_dir)
        return int(keys.nbytes + payload.nbytes)

    def open(self, name: str) -> Segment:
        folder = self.segments_dir / name
        try:
            keys = np.load(folder / "keys.npy", mmap_mode="r")
            payload = np.load(folder / "payload.npy", mmap_mode="r")
        except (OSError, ValueError) as error:
            raise IndexStoreError(
                f"index segment {name} in {self.segments_dir} is missing or damaged ({error});"
                " the files it held must be indexed again"
            ) from error
        return Segment(name, keys, payload)

    def merge(
        self, segments: Sequence[Segment], live: npt.NDArray[np.bool_] | None
    ) -> tuple[str, int]:
        """Write one segment with the rows of ``segments`` whose file is live; its name, rows."""
        keys = np.concatenate([segment.keys for segment in segments])
        payload = np.concatenate([segment.payload for segment in segments])
        if live is not None:
            ids = (payload >> np.uint64(_FILE_SHIFT)).astype(np.int64)
            keep = live[np.minimum(ids, len(live) - 1)] & (ids < len(live))
            keys, payload = keys[keep], payload[keep]
        name = self.new_name()
        self.write(name, keys, payload)
        return name, len(keys)

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            shutil.rmtree(self.segments_dir / name, ignore_errors=True)

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


def plan_merges(sizes: dict[str, int], fan_in: int = 4, base: int = 1 << 20) -> list[list[str]]:
    """Size-tiered merging: whenever ``fan_in`` segments share a size tier, merge them.

    Tier = how many times ``fan_in`` fits between ``base`` rows and the segment's rows, so
    every row is rewritten about log_fan_in(index rows / base) times over the index's life.
    """
    tiers: dict[int, list[str]] = {}
    for name, rows in sizes.items():
        tier = 0
        while rows >= base * fan_in ** (tier + 1):
            tier += 1
        tiers.setdefault(tier, []).append(name)
    return [
        sorted(names, key=sizes.__getitem__) for names in tiers.values() if len(names) >= fan_in
    ]


class IndexReader:
    """The live segments, memory-mapped, and the live file ids: what a lookup needs."""

    def __init__(self, segments: Sequence[Segment], live_ids: Iterable[int]) -> None:
        self.segments = list(segments)
        ids = np.fromiter(live_ids, dtype=np.int64)
        self.live = np.zeros(int(ids.max()) + 1 if len(ids) else 1, dtype=bool)
        self.live[ids] = True
        self.file_count = len(ids)

    @property
    def rows(self) -> int:
        return sum(len(segment) for segment in self.segments)

    def lookup(self, hashes: U32) -> Candidates:
        """Every live index row whose hash equals one of ``hashes``."""
        order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[order]
        queries: list[npt.NDArray[np.int64]] = []
        payloads: list[U64] = []
        for segment in self.segments:
            lo = np.searchsorted(segment.keys, sorted_hashes, side="left")
            hi = np.searchsorted(segment.keys, sorted_hashes, side="right")
            counts = hi - lo
            total = int(counts.sum())
            if not total:
                continue
            which = np.repeat(np.arange(len(sorted_hashes)), counts)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            rows = starts + np.arange(total)
            queries.append(order[which])
            payloads.append(np.asarray(segment.payload[rows]))
        if not queries:
            empty = np.empty(0, np.int64)
            return Candidates(empty, empty, empty, empty, empty)
        found = unpack(np.concatenate(queries), np.concatenate(payloads))
        ids = found.file_ids
        alive = (ids < len(self.live)) & self.live[np.minimum(ids, len(self.live) - 1)]
        return Candidates(
            found.query[alive],
            ids[alive],
            found.times[alive],
            found.spans[alive],
            found.logf[alive],
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
