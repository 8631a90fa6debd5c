"""Where a found track really comes in and goes out: its level envelope in the mix.

Fingerprints find a track once it dominates the mix, several seconds into a crossfade. With
the play's line known (reference time = offset + speed x mix time, and the pitch factor),
the reference's own spectral peaks can be looked for in the mix spectrogram one by one:

- a reference peak that is still a local maximum of the mix means the track is audible
  there; the same test with the peaks moved up in frequency gives the chance rate;
- the mix's level at a reference peak minus the reference's own level there is the track's
  gain in the mix (plus a constant: EQ, encoding). Its lower quartile per second follows
  the fader: flat once the track plays alone, rising through a fade-in.

A fade-in is then the stretch where that gain climbs; a line through it, extended down to
silence, gives the second the DJ started the fade. A hard cut has no climb: the first
audible second is the start. Fade-outs are the same read backwards.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter

from set2tracks.fingerprint import features
from set2tracks.fingerprint.matcher import Found

# (library file id, first frame, last frame) -> the file's stored peaks there, or None.
ReferencePeaks = Callable[[int, int, int], features.Peaks | None]

OUTSIDE = 30.0  # seconds examined beyond the fingerprinted edge
INSIDE = 20.0  # seconds examined inside it (the plateau the gain is measured against)
MIN_PEAKS = 8  # reference peaks a second needs to be judged
AUDIBLE_EXCESS = 0.2  # hit rate above chance that counts as audible
RAMP_LOW = math.log(0.25)  # the fade is fitted where the gain is 25-90 % of the plateau
RAMP_HIGH = math.log(0.9)
MAX_FADE = 40.0
CONTROL_BINS = 7
MAX_SHIFT_FRAMES = 8  # the line may be this far off (128 ms) at the envelope's ends
SHIFT_SECONDS = 5  # seconds that share a time shift

F64 = npt.NDArray[np.float64]


class SpectrogramTape:
    """The mix's spectrogram, a byte per bin, kept on disk while the mix streams through.

    About 100 MB per hour of mix in a temporary folder instead of decoding stretches of
    the mix again: refining is then a matter of reading frames back.
    """

    FLOOR = -14.0  # natural-log magnitude of the quietest bin kept (digital silence is -13.8)
    STEP = 1 / 12  # 0.72 dB per level

    def __init__(self, directory: Path) -> None:
        self._path = directory / "mix-spectrogram.u8"
        self._file: BinaryIO | None = self._path.open("wb")
        self.count = 0

    def write(self, spec: npt.NDArray[np.float32]) -> None:
        assert self._file is not None, "the tape is closed"
        levels = np.clip(np.rint((spec - self.FLOOR) / self.STEP), 0, 255).astype(np.uint8)
        self._file.write(levels.tobytes())
        self.count += len(spec)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def frames(self, start: float, end: float) -> tuple[float, npt.NDArray[np.float32]]:
        """The frames covering ``start``..``end`` seconds and the time of the first one."""
        self.close()
        width = features.HIGH_BIN - features.LOW_BIN + 1
        first = max(int(start / features.FRAME_SECONDS), 0)
        last = max(min(math.ceil(end / features.FRAME_SECONDS), self.count), first)
        # Read, not memory-mapped: mapped pages count in the process's resident memory, and
        # the edges of every play of a four-hour mix touch most of its 400 MB tape.
        with self._path.open("rb") as stream:
            stream.seek(first * width)
            data = stream.read((last - first) * width)
        levels = np.frombuffer(data, np.uint8).reshape(-1, width).astype(np.float32)
        return first * features.FRAME_SECONDS, levels * self.STEP + self.FLOOR


MixSpectrogram = Callable[[float, float], tuple[float, npt.NDArray[np.float32]]]


@dataclasses.dataclass(frozen=True)
class Envelope:
    """Per-second judgements over the examined stretch, first second at ``start``."""

    start: float
    audible: npt.NDArray[np.bool_]
    level: F64  # natural-log gain against the reference; NaN where too few peaks


def refine(found: Found, mix: MixSpectrogram, reference_peaks: ReferencePeaks) -> Found:
    """``found`` with its start and end moved to where the track fades in and out."""
    start = _edge(found, mix, reference_peaks, at_start=True)
    end = _edge(found, mix, reference_peaks, at_start=False)
    start = min(start, found.start) if start is not None else found.start
    end = max(end, found.end) if end is not None else found.end
    # Never before the track's own first second.
    start = max(start, -found.offset / found.speed, 0.0)
    return dataclasses.replace(found, start=round(start, 2), end=round(max(end, start), 2))


def envelope(
    found: Found,
    mix: MixSpectrogram,
    reference_peaks: ReferencePeaks,
    start: float,
    end: float,
) -> Envelope | None:
    if end - max(start, 0.0) < 5:
        return None
    start, spec = mix(max(start, 0.0), end)
    ref_start = found.offset + found.speed * start
    ref_end = found.offset + found.speed * end
    if ref_end <= 0:
        return None
    ref_start = max(ref_start, 0.0)
    frame = features.FRAME_SECONDS
    peaks = reference_peaks(found.file_id, int(ref_start / frame), math.ceil(ref_end / frame))
    if peaks is None or len(spec) < 10 or len(peaks) < MIN_PEAKS:
        return None
    mix_seconds = (peaks.times * frame - found.offset) / found.speed
    rows = np.rint((mix_seconds - start) / frame).astype(np.int64)
    mix_logf = peaks.logf + math.log2(found.pitch)
    cols = np.rint(2.0**mix_logf / features.BIN_HZ - features.LOW_BIN).astype(np.int64)
    height, width = spec.shape
    margin = MAX_SHIFT_FRAMES + 1
    ok = (
        (rows >= margin)
        & (rows < height - margin)
        & (cols >= 1)
        & (cols < width - CONTROL_BINS - 1)
    )
    rows, cols, levels = rows[ok], cols[ok], peaks.level[ok]
    seconds = np.floor(mix_seconds[ok] - start).astype(np.int64)

    count = math.ceil(end - start)
    per_second = np.bincount(seconds, minlength=count)[:count]
    # The line comes from where the track dominates; tens of seconds away a 0.1 % speed
    # error is several frames. Each stretch of the envelope takes the time shift that
    # finds most of the track's peaks there, and the chance test gets the same freedom.
    shifts = range(-MAX_SHIFT_FRAMES, MAX_SHIFT_FRAMES + 1)
    near = _near_mix_peaks(spec)
    best_hits, best_shift = _best_shift(near, rows, cols, seconds, count, shifts)
    chance_hits, _ = _best_shift(near, rows, cols + CONTROL_BINS, seconds, count, shifts)
    judged = per_second >= MIN_PEAKS
    rate = np.divide(best_hits, per_second, out=np.zeros(count), where=judged)
    chance = chance_hits[judged].sum() / max(per_second[judged].sum(), 1)
    audible = judged & (rate - chance >= AUDIBLE_EXCESS)

    gains = spec[rows + best_shift[seconds], cols] - levels
    level = np.full(count, np.nan)
    for second in np.flatnonzero(judged):
        level[second] = np.percentile(gains[seconds == second], 25)
    return Envelope(start=start, audible=audible, level=level)


def _best_shift(
    near: npt.NDArray[np.bool_],
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.int64],
    count: int,
    shifts: range,
) -> tuple[F64, npt.NDArray[np.int64]]:
    """Per second: the peaks found at the time shift best over the 5 s around it, and it."""
    found = np.stack(
        [
            np.bincount(seconds, weights=near[rows + shift, cols], minlength=count)[:count]
            for shift in shifts
        ]
    )
    around = np.apply_along_axis(np.convolve, 1, found, np.ones(SHIFT_SECONDS), mode="same")
    choice = np.argmax(around, axis=0)
    return found[choice, np.arange(count)], np.asarray(shifts)[choice]


def _near_mix_peaks(spec: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Where a local maximum of the mix (3 frames x 5 bins) lies within a frame and a bin."""
    is_max = (spec >= maximum_filter(spec, size=(3, 5))).view(np.uint8)
    return maximum_filter(is_max, size=(3, 3)).view(bool)


def _edge(
    found: Found, mix: MixSpectrogram, reference_peaks: ReferencePeaks, at_start: bool
) -> float | None:
    if at_start:
        lo, hi = found.start - OUTSIDE, min(found.start + INSIDE, found.end)
    else:
        lo, hi = max(found.end - INSIDE, found.start), found.end + OUTSIDE
    shape = envelope(found, mix, reference_peaks, lo, hi)
    if shape is None:
        return None
    audible, level = shape.audible, shape.level
    edge = found.start if at_start else found.end
    edge_index = int(np.clip(math.floor(edge - shape.start), 0, len(audible) - 1))
    if not at_start:
        # Read a fade-out backwards: it becomes a fade-in.
        audible, level = audible[::-1], level[::-1]
        edge_index = len(audible) - 1 - edge_index
    onset = _onset(audible, np.isfinite(level), edge_index)
    if onset is None:
        return None
    fade = _fade_start(level, onset)
    position = fade if fade is not None else float(onset)
    if at_start:
        return shape.start + position
    return shape.start + len(audible) - position


def _onset(audible: npt.NDArray[np.bool_], judged: npt.NDArray[np.bool_], edge: int) -> int | None:
    """The first second from which the track stays audible up to the fingerprinted edge.

    A few seconds with too few reference peaks to judge (a sparse passage) neither break
    nor make the run; a stretch mostly unjudged proves nothing.
    """

    def share(first: int, last: int) -> float:
        seen = judged[first:last]
        if 2 * seen.sum() < len(seen):
            return 0.0
        return float(audible[first:last][seen].mean())

    for second in range(0, edge + 1):
        if audible[second] and share(second, second + 6) >= 0.75 and share(second, edge + 1) >= 0.6:
            return second
    return None


def _fade_start(level: F64, onset: int) -> float | None:
    """Where the gain's climb after ``onset``, extended linearly, reaches silence."""
    smooth = np.array(
        [
            np.nanmean(level[k : k + 3]) if np.isfinite(level[k : k + 3]).any() else np.nan
            for k in range(len(level))
        ]
    )
    after = smooth[onset:]
    if not np.isfinite(after).any():
        return None
    plateau = float(np.nanmax(after))
    reached = onset + int(np.argmax(np.nan_to_num(after, nan=-np.inf) >= plateau + RAMP_HIGH))
    first = max(onset - 2, 0)
    ks = np.arange(first, reached + 1)
    values = level[first : reached + 1] - plateau
    usable = np.isfinite(values) & (values >= RAMP_LOW) & (values <= RAMP_HIGH)
    if usable.sum() < 3 or np.ptp(ks[usable]) < 2:
        return None
    centres = ks[usable] + 0.5
    slope, intercept = np.polyfit(centres, np.exp(values[usable]), 1)
    if slope <= 1 / MAX_FADE:
        return None
    start = -intercept / slope
    if not onset - 20 <= start <= onset + 1:
        return None
    return float(start)
