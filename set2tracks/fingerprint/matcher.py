"""Finding library tracks inside a mix: streaming, window by window, then one line per play.

1. The mix's quads are looked up slice by slice (5 s of anchors). Each index row found
   gives a candidate match: library file, mix time, reference time, playback speed (ratio
   of the two spans) and pitch factor (difference of the anchors' log-frequencies).
2. Every 10 s window (5 s hop) votes: among the files with most candidates, the votes of
   one file agree on a speed and on the reference time at the window's start when the file
   really plays there. A file is heard in the window when its best (speed, offset) cell
   beats both a floor and several times the background of unrelated files. Up to three
   files may be heard at once (crossfades).
3. A file heard in windows less than 15 s apart is one play. Its matches give a line
   (reference time = offset + speed x mix time) by a guarded least-squares fit; matches of
   that file lying on the line, looked for up to 40 s around the play, push its start and
   end out to where the track is first and last recognisable (a quiet fade-in still leaves
   a few exact matches, which unrelated audio practically never does).

Memory is bounded by the window, not the mix: only matches of heard files are kept.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from set2tracks.fingerprint.audio import Samples
from set2tracks.fingerprint.features import (
    FRAME_SECONDS,
    Extractor,
    Quads,
    neighbour_band_hashes,
)
from set2tracks.fingerprint.index import IndexReader

SLICE_SECONDS = 5.0
SPEED_RANGE = (0.85, 1.18)
SPEED_BIN = math.log(1.03)
OFFSET_BIN = 1.0
TOP_FILES = 10
MIN_SCORE = 8
BACKGROUND_RATIO = 3.0
MAX_FILES_PER_WINDOW = 3
RUN_GAP_SECONDS = 15.0
MIN_WINDOWS = 2
EXTEND_SECONDS = 40.0
EXTEND_GAP_SECONDS = 4.0
ON_LINE_SECONDS = 0.25
SAME_SPEED = 0.005
SAME_OFFSET_SECONDS = 2.0
_BUFFER_SLICES = int(EXTEND_SECONDS / SLICE_SECONDS)

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Matches:
    """Candidate matches, one per row across the arrays."""

    files: npt.NDArray[np.int64]
    mix: F64  # seconds into the mix
    ref: F64  # seconds into the library file
    speed: F64  # playback speed of this match (reference span / mix span)
    log_pitch: F64  # log2 of the pitch factor

    def __len__(self) -> int:
        return len(self.files)

    def take(self, which: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> Matches:
        return Matches(
            self.files[which],
            self.mix[which],
            self.ref[which],
            self.speed[which],
            self.log_pitch[which],
        )

    @staticmethod
    def concat(parts: Iterable[Matches]) -> Matches:
        parts = [part for part in parts if len(part)]
        if not parts:
            empty = np.empty(0)
            return Matches(np.empty(0, np.int64), empty, empty, empty, empty)
        return Matches(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))


_FIELDS = ("files", "mix", "ref", "speed", "log_pitch")


@dataclass
class _Hit:
    window: int
    score: float
    background: float
    matches: Matches


@dataclass
class _Play:
    file_id: int
    hits: list[_Hit] = field(default_factory=list)
    around: list[Matches] = field(default_factory=list)
    last_slice: int = 0


@dataclass(frozen=True)
class Found:
    """One play of a library file in the mix."""

    file_id: int
    start: float
    end: float
    speed: float
    pitch: float
    confidence: float
    matches: int
    # The play's line: reference seconds = offset + speed x mix seconds.
    offset: float


@dataclass(frozen=True)
class Tracklist:
    duration: float
    found: list[Found]


class Matcher:
    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader
        self._pending: list[Quads] = []
        self._slice = 0  # index of the slice being filled
        self._recent: deque[Matches] = deque(maxlen=_BUFFER_SLICES + 2)
        self._open: dict[int, _Play] = {}
        self._closed: list[_Play] = []

    def identify(
        self,
        blocks: Iterable[Samples],
        on_spectrogram: Callable[[npt.NDArray[np.float32]], None] | None = None,
    ) -> Tracklist:
        extractor = Extractor(on_spectrogram)
        for block in blocks:
            self._take(extractor.feed(block), final=False)
        self._take(extractor.finish(), final=True)
        self._closed.extend(self._open.values())
        self._open.clear()
        resolved = [(play, self._resolve(play)) for play in self._closed]
        found = self._join([(play, one) for play, one in resolved if one is not None])
        found.sort(key=lambda play: (play.start, play.end))
        return Tracklist(duration=extractor.seconds, found=found)

    def _join(self, plays: list[tuple[_Play, Found]]) -> list[Found]:
        """One play split by a stretch the fingerprints missed (a breakdown) is one entry.

        Same file, same line: the track kept playing. A track played again later, or a
        loop, lands on another line and stays a separate entry.
        """
        plays.sort(key=lambda pair: (pair[1].file_id, pair[1].start))
        joined: list[tuple[_Play, Found]] = []
        for play, found in plays:
            if joined:
                last_play, last = joined[-1]
                same_line = (
                    last.file_id == found.file_id
                    and abs(last.speed / found.speed - 1) <= SAME_SPEED
                    and abs(last.offset - found.offset) <= SAME_OFFSET_SECONDS
                )
                if same_line:
                    merged = _Play(
                        found.file_id,
                        hits=last_play.hits + play.hits,
                        around=last_play.around + play.around,
                    )
                    if (again := self._resolve(merged)) is not None:
                        joined[-1] = (merged, again)
                        continue
            joined.append((play, found))
        return [found for _, found in joined]

    # Streaming: quads arrive in anchor order; a slice is complete once a later anchor shows.

    def _take(self, quads: Quads, final: bool) -> None:
        slice_frames = SLICE_SECONDS / FRAME_SECONDS
        if len(quads):
            self._pending.append(quads)
        while self._pending:
            pending = Quads.concat(self._pending)
            end = int(np.searchsorted(pending.times, (self._slice + 1) * slice_frames, side="left"))
            if end == len(pending) and not final:
                self._pending = [pending]
                return
            done = Quads(
                pending.hashes[:end], pending.times[:end], pending.spans[:end], pending.logf[:end]
            )
            rest = Quads(
                pending.hashes[end:], pending.times[end:], pending.spans[end:], pending.logf[end:]
            )
            self._pending = [rest] if len(rest) else []
            self._close_slice(done)
            if final and not self._pending:
                return

    def _close_slice(self, quads: Quads) -> None:
        matches = self._lookup(quads)
        self._recent.append(matches)
        number = self._slice
        self._slice += 1
        for play in self._open.values():
            if number - play.last_slice <= _BUFFER_SLICES:
                play.around.append(matches.take(matches.files == play.file_id))
        if len(self._recent) >= 2:
            self._vote(number - 1, Matches.concat([self._recent[-2], self._recent[-1]]))
        gap_slices = RUN_GAP_SECONDS / SLICE_SECONDS
        for file_id, play in list(self._open.items()):
            if number - play.last_slice > max(gap_slices, _BUFFER_SLICES):
                self._closed.append(self._open.pop(file_id))

    def _lookup(self, quads: Quads) -> Matches:
        if not len(quads):
            return Matches.concat([])
        neighbours = neighbour_band_hashes(quads.hashes, quads.logf)
        # An anchor at the edge of the lowest or highest band has no neighbour to probe.
        extra = np.flatnonzero(neighbours != quads.hashes)
        probe = np.concatenate([np.arange(len(quads)), extra])
        found = self.reader.matches(
            np.concatenate([quads.hashes, neighbours[extra]]),
            quads.spans[probe].astype(np.float32),
            quads.logf[probe],
            SPEED_RANGE,
            math.log2(SPEED_RANGE[1]),
        )
        query = probe[found.query]
        return Matches(
            found.file_ids,
            quads.times[query].astype(np.float64) * FRAME_SECONDS,
            found.times.astype(np.float64) * FRAME_SECONDS,
            found.speed.astype(np.float64),
            found.log_pitch.astype(np.float64),
        )

    # Voting in one window.

    def _vote(self, window: int, matches: Matches) -> None:
        if len(matches) < MIN_SCORE:
            return
        files, inverse, counts = np.unique(matches.files, return_inverse=True, return_counts=True)
        top = np.argsort(-counts, kind="stable")[:TOP_FILES]
        rank_of = np.full(len(files), -1)
        rank_of[top] = np.arange(len(top))
        ranks = rank_of[inverse]
        chosen = ranks >= 0
        sub = matches.take(chosen)
        ranks = ranks[chosen]
        start = window * SLICE_SECONDS
        speed_bin = np.floor(np.log(sub.speed) / SPEED_BIN).astype(np.int64)
        offset = sub.ref - sub.speed * (sub.mix - start)
        offset_bin = np.floor(offset / OFFSET_BIN).astype(np.int64)
        speed_bin -= speed_bin.min() - 1
        offset_bin -= offset_bin.min() - 1
        width_o = int(offset_bin.max()) + 2
        width_s = int(speed_bin.max()) + 2
        keys = (ranks * width_s + speed_bin) * width_o + offset_bin
        cells, cell_counts = np.unique(keys, return_counts=True)
        scores = cell_counts.copy()
        for ds in (-1, 0, 1):
            for do in (-1, 0, 1):
                if ds == 0 and do == 0:
                    continue
                neighbour = cells + ds * width_o + do
                position = np.minimum(np.searchsorted(cells, neighbour), len(cells) - 1)
                hit = cells[position] == neighbour
                scores[hit] += cell_counts[position[hit]]
        cell_rank = cells // (width_s * width_o)
        best = np.zeros(len(top), np.int64)
        np.maximum.at(best, cell_rank, scores)
        ordered = np.sort(best)[::-1]
        background = (
            float(ordered[MAX_FILES_PER_WINDOW]) if len(ordered) > MAX_FILES_PER_WINDOW else 0.0
        )
        floor = max(MIN_SCORE, BACKGROUND_RATIO * max(background, 1.0))
        for rank in np.argsort(-best, kind="stable")[:MAX_FILES_PER_WINDOW]:
            if best[rank] < floor:
                break
            in_rank = cell_rank == rank
            cell = cells[in_rank][np.argmax(scores[in_rank])]
            cell_s = (cell // width_o) % width_s
            cell_o = cell % width_o
            near = (
                (ranks == rank)
                & (np.abs(speed_bin - cell_s) <= 1)
                & (np.abs(offset_bin - cell_o) <= 1)
            )
            file_id = int(files[top[rank]])
            self._record(file_id, _Hit(window, float(best[rank]), background, sub.take(near)))

    def _record(self, file_id: int, hit: _Hit) -> None:
        play = self._open.get(file_id)
        if play is not None and hit.window - play.hits[-1].window > RUN_GAP_SECONDS / SLICE_SECONDS:
            self._closed.append(self._open.pop(file_id))
            play = None
        if play is None:
            play = _Play(file_id)
            # The file may already have been faintly there: keep its recent matches.
            play.around.extend(m.take(m.files == file_id) for m in self._recent)
            self._open[file_id] = play
        play.hits.append(hit)
        play.last_slice = hit.window + 1

    # One play: the line, the extent, the confidence.

    def _resolve(self, play: _Play) -> Found | None:
        if len({hit.window for hit in play.hits}) < MIN_WINDOWS:
            return None
        core = _unique(Matches.concat(hit.matches for hit in play.hits))
        line = _fit_line(core)
        if line is None:
            return None
        offset, speed = line
        on_core = np.abs(core.ref - (offset + speed * core.mix)) <= ON_LINE_SECONDS * 4
        if on_core.sum() < MIN_SCORE:
            return None
        first = float(core.mix[on_core].min())
        last = float(core.mix[on_core].max())
        around = _unique(Matches.concat([*play.around, core]))
        on_line = (np.abs(around.ref - (offset + speed * around.mix)) <= ON_LINE_SECONDS) & (
            np.abs(around.speed / speed - 1) <= 0.08
        )
        times = np.sort(around.mix[on_line])
        start = _extend(times, first, -1)
        end = _extend(times, last, +1)
        # A track cannot be heard before its own beginning.
        start = max(start, -offset / speed - 1.0, 0.0)
        pitch = float(2 ** np.median(core.log_pitch[on_core]))
        ratios = [hit.score / max(hit.background, 1.0) for hit in play.hits]
        confidence = (1 - math.exp(-float(on_core.sum()) / 60)) * min(
            1.0, float(np.median(ratios)) / 12
        )
        return Found(
            file_id=play.file_id,
            start=round(start, 2),
            end=round(max(end, start), 2),
            speed=round(speed, 4),
            pitch=round(pitch, 4),
            confidence=round(confidence, 3),
            matches=int(on_core.sum()),
            offset=offset,
        )


def _unique(matches: Matches) -> Matches:
    """Overlapping windows see the same matches twice: keep one of each."""
    if not len(matches):
        return matches
    rows = np.stack([matches.mix, matches.ref, matches.speed], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    return matches.take(np.sort(first))


def _fit_line(matches: Matches) -> tuple[float, float] | None:
    """ref = offset + speed * mix, robust to loops (other offsets) and noisy per-match speeds."""
    if len(matches) < MIN_SCORE:
        return None
    speed = float(np.median(matches.speed))
    offsets = matches.ref - speed * matches.mix
    bins = np.floor(offsets / OFFSET_BIN).astype(np.int64)
    values, counts = np.unique(bins, return_counts=True)
    best = values[np.argmax(counts)]
    near = np.abs(bins - best) <= 1
    inliers = matches.take(near)
    offset = float(np.median(inliers.ref - speed * inliers.mix))
    inliers = inliers.take(np.abs(inliers.ref - (offset + speed * inliers.mix)) <= 1.5)
    low, high = SPEED_RANGE
    if len(inliers) >= MIN_SCORE and np.ptp(inliers.mix) >= 5.0:
        slope, intercept = np.polyfit(inliers.mix, inliers.ref, 1)
        if low <= slope <= high and abs(slope / speed - 1) < 0.05:
            fitted = inliers.take(np.abs(inliers.ref - (intercept + slope * inliers.mix)) <= 0.5)
            if len(fitted) >= MIN_SCORE and np.ptp(fitted.mix) >= 5.0:
                slope, intercept = np.polyfit(fitted.mix, fitted.ref, 1)
            if low <= slope <= high:
                return float(intercept), float(slope)
    return offset, speed


def _extend(times: F64, edge: float, direction: int) -> float:
    """Walk from ``edge`` along sorted on-line match times while gaps stay short."""
    if direction < 0:
        candidates = times[(times < edge) & (times >= edge - EXTEND_SECONDS)][::-1]
    else:
        candidates = times[(times > edge) & (times <= edge + EXTEND_SECONDS)]
    current = edge
    for time in candidates:
        if abs(time - current) > EXTEND_GAP_SECONDS:
            break
        current = float(time)
    return current
