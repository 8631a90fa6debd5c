"""Fingerprints that survive tempo and pitch changes: spectral peaks grouped in fours.

The signal (mono, 8 kHz) becomes a log-magnitude spectrogram (16 ms hop), whose local
maxima are the peaks. Each peak (the anchor) is grouped with three later peaks into a
"quad". What a DJ's tempo change leaves intact goes into the hash:

- the times of the two middle peaks as fractions of the quad's span (a time stretch scales
  every gap alike, so the ratios stay);
- the three peaks' distances in octaves from the anchor (key-lock keeps frequencies and
  vinyl-style speed shifts them all by the same factor, so log-frequency differences stay);
- the anchor's half-octave band (coarse enough that the query probes one neighbour band to
  catch vinyl shifts).

What changes goes next to the hash: the anchor's time, the span in frames (its ratio to
the span found in a mix is that match's playback speed) and the anchor's log-frequency
(its difference is the pitch factor). See docs/fingerprint-design.md for the measurements
behind every constant.

``Extractor`` is streaming: feed it blocks of samples of any size and it returns the quads
that are final so far; the result is identical to extracting the whole signal at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy.ndimage import maximum_filter

from set2tracks.fingerprint.audio import SAMPLE_RATE, Samples

N_FFT = 1024
HOP = 128
FRAME_SECONDS = HOP / SAMPLE_RATE  # 16 ms
BIN_HZ = SAMPLE_RATE / N_FFT
LOW_BIN = int(np.ceil(110 / BIN_HZ))
HIGH_BIN = int(3500 / BIN_HZ)
LOGF_FLOOR = float(np.log2(110.0))

# Peaks: a maximum of its 11-frame x 15-bin neighbourhood, 1.0 (natural log) above the
# frame's mean, the strongest PEAKS_PER_BLOCK kept per block of about one second.
PEAK_FRAMES = 11
PEAK_BINS = 15
PEAK_ABOVE_MEAN = 1.0
PEAK_FLOOR = float(np.log(1e-2))
BLOCK_FRAMES = 62
PEAKS_PER_BLOCK = 30

# Quads: the anchor plus three of the next FAN peaks within one octave, every gap at least
# MIN_GAP frames, the span at most MAX_SPAN frames; the QUADS_PER_ANCHOR shortest spans kept.
FAN = 16
MIN_GAP = 6
MAX_SPAN = 120
OCTAVE_RANGE = 1.0
QUADS_PER_ANCHOR = 3
RATIO_LEVELS = 16
LOGF_STEPS = 16  # steps per octave for the differences
DIFF_LEVELS = 2 * LOGF_STEPS + 1
BANDS = 16
LOGF_PAYLOAD_STEPS = 64  # the anchor's log-frequency, stored at 1/64 octave

_HALO = PEAK_FRAMES // 2
_LOOKAHEAD = 4 * FAN  # peaks examined per anchor before the octave filter

_COMBOS = np.array(
    sorted(itertools.combinations(range(FAN), 3), key=lambda combo: (combo[2], combo)),
    dtype=np.intp,
)
_WINDOW = np.hanning(N_FFT).astype(np.float32)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Quads:
    """Fingerprints in anchor-time order: one row per quad across the arrays."""

    hashes: npt.NDArray[np.uint32]
    times: npt.NDArray[np.int32]  # anchor frame
    spans: npt.NDArray[np.int16]  # frames from the anchor to the last peak
    logf: npt.NDArray[np.int16]  # anchor log2-frequency above 110 Hz, in 1/64 octave

    def __len__(self) -> int:
        return len(self.hashes)

    @staticmethod
    def empty() -> Quads:
        return Quads(
            np.empty(0, np.uint32),
            np.empty(0, np.int32),
            np.empty(0, np.int16),
            np.empty(0, np.int16),
        )

    @staticmethod
    def concat(parts: list[Quads]) -> Quads:
        parts = [part for part in parts if len(part)]
        if not parts:
            return Quads.empty()
        if len(parts) == 1:
            return parts[0]
        return Quads(
            np.concatenate([p.hashes for p in parts]),
            np.concatenate([p.times for p in parts]),
            np.concatenate([p.spans for p in parts]),
            np.concatenate([p.logf for p in parts]),
        )


@dataclass(frozen=True)
class Peaks:
    times: npt.NDArray[np.int32]  # frame
    logf: npt.NDArray[np.float32]  # log2 of the frequency in Hz, interpolated
    strength: npt.NDArray[np.float32]  # above the frame's mean (picks the strongest)
    level: npt.NDArray[np.float32]  # the log-magnitude itself (refine.py compares levels)

    def __len__(self) -> int:
        return len(self.times)


def _empty_peaks() -> Peaks:
    return Peaks(
        np.empty(0, np.int32),
        np.empty(0, np.float32),
        np.empty(0, np.float32),
        np.empty(0, np.float32),
    )


def concat_peaks(parts: list[Peaks]) -> Peaks:
    if not parts:
        return _empty_peaks()
    return Peaks(
        np.concatenate([p.times for p in parts]),
        np.concatenate([p.logf for p in parts]),
        np.concatenate([p.strength for p in parts]),
        np.concatenate([p.level for p in parts]),
    )


def _take_peaks(peaks: Peaks, which: slice | npt.NDArray[np.bool_]) -> Peaks:
    return Peaks(peaks.times[which], peaks.logf[which], peaks.strength[which], peaks.level[which])


def spectrogram(samples: Samples) -> npt.NDArray[np.float32]:
    """Log-magnitude frames (rows) of the 110-3500 Hz bins; a frame every HOP samples."""
    count = (len(samples) - N_FFT) // HOP + 1
    if count <= 0:
        return np.empty((0, HIGH_BIN - LOW_BIN + 1), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP][:count]
    spectrum = scipy.fft.rfft(frames * _WINDOW, axis=1, workers=1)[:, LOW_BIN : HIGH_BIN + 1]
    return np.log(np.abs(spectrum) + 1e-6).astype(np.float32)


def find_peaks(spec: npt.NDArray[np.float32], first_frame: int, halo_before: int) -> Peaks:
    """Peaks of ``spec`` rows ``halo_before:``-``-_HALO``, whose first row is ``first_frame``.

    The rows around the examined ones only serve as neighbourhood.
    """
    local_max = maximum_filter(spec, size=(PEAK_FRAMES, PEAK_BINS), mode="constant", cval=-np.inf)
    mean = spec.mean(axis=1, keepdims=True)
    is_peak = (spec == local_max) & (spec > mean + PEAK_ABOVE_MEAN) & (spec > PEAK_FLOOR)
    # Edge bins cannot be interpolated; they are out of range anyway.
    is_peak[:, 0] = False
    is_peak[:, -1] = False
    is_peak[:halo_before] = False
    rows, cols = np.nonzero(is_peak)
    if not len(rows):
        return _empty_peaks()
    centre = spec[rows, cols]
    left = spec[rows, cols - 1]
    right = spec[rows, cols + 1]
    curvature = left - 2 * centre + right
    delta = np.where(
        curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1), 0
    )
    freq = (cols + LOW_BIN + np.clip(delta, -0.5, 0.5)) * BIN_HZ
    times = (rows + first_frame).astype(np.int32)
    strength = (centre - mean[rows, 0]).astype(np.float32)
    # Keep the strongest peaks of each block of frames (blocks aligned on absolute frames,
    # so streaming and whole-file extraction agree).
    blocks = times // BLOCK_FRAMES
    order = np.lexsort((-strength, blocks))
    blocks_sorted = blocks[order]
    starts = np.searchsorted(blocks_sorted, blocks_sorted, side="left")
    rank = np.arange(len(order)) - starts
    keep = order[rank < PEAKS_PER_BLOCK]
    keep = keep[np.lexsort((freq[keep], times[keep]))]
    return Peaks(times[keep], np.log2(freq[keep]).astype(np.float32), strength[keep], centre[keep])


def build_quads(peaks: Peaks, anchors: int) -> Quads:
    """Quads for the first ``anchors`` peaks; later peaks only complete them."""
    if anchors <= 0 or len(peaks) < 4:
        return Quads.empty()
    times = peaks.times
    logf = peaks.logf
    n = len(peaks)
    index = np.arange(anchors)[:, None] + np.arange(1, _LOOKAHEAD + 1)[None, :]
    inside = index < n
    index = np.minimum(index, n - 1)
    dt = times[index] - times[:anchors, None]
    dlogf = logf[index] - logf[:anchors, None]
    usable = inside & (dt > 0) & (dt <= MAX_SPAN) & (np.abs(dlogf) < OCTAVE_RANGE)
    rank = np.cumsum(usable, axis=1) - 1
    usable &= rank < FAN
    rows, cols = np.nonzero(usable)
    fan = np.zeros((anchors, FAN), np.int64)
    # Absent fan members sit far in the future: every quad using one fails the span test.
    fan_t = np.full((anchors, FAN), 1 << 30, np.int32)
    fan[rows, rank[rows, cols]] = index[rows, cols]
    fan_t[rows, rank[rows, cols]] = times[index[rows, cols]]

    # Combinations ordered by their last member: spans grow along a row, so the first
    # valid ones per anchor are the shortest.
    t0 = times[:anchors, None]
    tj, tk, tl = (fan_t[:, _COMBOS[:, c]] for c in range(3))
    valid = (
        (tj - t0 >= MIN_GAP) & (tk - tj >= MIN_GAP) & (tl - tk >= MIN_GAP) & (tl - t0 <= MAX_SPAN)
    )
    valid &= np.cumsum(valid, axis=1) <= QUADS_PER_ANCHOR
    rows, cols = np.nonzero(valid)
    if not len(rows):
        return Quads.empty()
    safe_j, safe_k, safe_l = (fan[rows, _COMBOS[cols, c]] for c in range(3))
    anchor_t = times[rows].astype(np.int64)
    span_q = (tl[rows, cols] - anchor_t).astype(np.float64)
    r1 = ((tj[rows, cols] - anchor_t) / span_q * RATIO_LEVELS).astype(np.int64)
    r2 = ((tk[rows, cols] - anchor_t) / span_q * RATIO_LEVELS).astype(np.int64)
    f0 = logf[rows]

    def diff_level(other: IntArray) -> IntArray:
        level = np.rint((logf[other] - f0) * LOGF_STEPS).astype(np.int64) + LOGF_STEPS
        return np.clip(level, 0, DIFF_LEVELS - 1)

    dj, dk, dl = diff_level(safe_j), diff_level(safe_k), diff_level(safe_l)
    above = f0 - LOGF_FLOOR
    band = np.clip((above * 2).astype(np.int64), 0, BANDS - 1)
    hashes = (
        (((r1 * RATIO_LEVELS + r2) * DIFF_LEVELS + dj) * DIFF_LEVELS + dk) * DIFF_LEVELS + dl
    ) * BANDS + band
    order = np.argsort(anchor_t, kind="stable")
    return Quads(
        hashes[order].astype(np.uint32),
        anchor_t[order].astype(np.int32),
        span_q[order].astype(np.int16),
        np.rint(above[order] * LOGF_PAYLOAD_STEPS).astype(np.int16),
    )


def neighbour_band_hashes(
    hashes: npt.NDArray[np.uint32], logf: npt.NDArray[np.int16]
) -> npt.NDArray[np.uint32]:
    """The same quads filed under the half-octave band nearest the anchor's frequency.

    A vinyl-style speed change of up to about 13 % moves an anchor by less than a quarter of
    a band, so probing this one neighbour finds every quad whose anchor crossed a band edge.
    """
    band = (hashes % BANDS).astype(np.int64)
    # Where the anchor sits inside its band, in 1/128 octave: 0..63 spans the half octave.
    inside = logf.astype(np.int64) * 2 - band * LOGF_PAYLOAD_STEPS
    other = np.clip(np.where(inside >= LOGF_PAYLOAD_STEPS // 2, band + 1, band - 1), 0, BANDS - 1)
    return (hashes.astype(np.int64) - band + other).astype(np.uint32)


class Extractor:
    """Streaming fingerprint extraction: ``feed`` blocks, then ``finish``."""

    def __init__(
        self,
        on_spectrogram: Callable[[npt.NDArray[np.float32]], None] | None = None,
        keep_peaks: bool = False,
    ) -> None:
        self._samples = np.empty(0, np.float32)
        self._spec = np.empty((0, HIGH_BIN - LOW_BIN + 1), np.float32)
        self._spec_start = 0  # absolute frame of self._spec[0]
        self._next_block = 0  # first frame whose peaks are not picked yet
        self._peaks = _empty_peaks()
        # Sees every spectrogram frame once, in order (the matcher keeps them for refine.py).
        self._on_spectrogram = on_spectrogram
        # Every peak, when asked: the index stores a library file's peaks for refine.py.
        self.kept_peaks: list[Peaks] | None = [] if keep_peaks else None
        self.samples_seen = 0

    @property
    def seconds(self) -> float:
        return self.samples_seen / SAMPLE_RATE

    def feed(self, samples: Samples) -> Quads:
        self.samples_seen += len(samples)
        self._samples = np.concatenate([self._samples, samples.astype(np.float32, copy=False)])
        self._advance_spectrogram()
        return self._advance(final=False)

    def finish(self) -> Quads:
        # Zero padding lets the last samples reach a frame; silence adds no peaks.
        self._samples = np.concatenate([self._samples, np.zeros(N_FFT, np.float32)])
        self._advance_spectrogram()
        return self._advance(final=True)

    def _advance_spectrogram(self) -> None:
        spec = spectrogram(self._samples)
        if not len(spec):
            return
        if self._on_spectrogram is not None:
            self._on_spectrogram(spec)
        self._spec = np.concatenate([self._spec, spec])
        self._samples = self._samples[len(spec) * HOP :]

    def _advance(self, final: bool) -> Quads:
        spec_end = self._spec_start + len(self._spec)
        ready_end = spec_end if final else spec_end - _HALO
        # Whole blocks only, so the per-block cap sees every peak of its block.
        block_end = spec_end if final else (ready_end // BLOCK_FRAMES) * BLOCK_FRAMES
        if block_end > self._next_block:
            lo = max(self._next_block - _HALO, self._spec_start)
            hi = min(block_end + _HALO, spec_end)
            window = self._spec[lo - self._spec_start : hi - self._spec_start]
            found = find_peaks(window, lo, self._next_block - lo)
            if len(found):
                inside = found.times < block_end
                found = _take_peaks(found, inside)
                self._peaks = concat_peaks([self._peaks, found])
                if self.kept_peaks is not None:
                    self.kept_peaks.append(found)
            self._next_block = block_end
            drop = max(self._next_block - _HALO, self._spec_start) - self._spec_start
            self._spec = self._spec[drop:]
            self._spec_start += drop
        # An anchor is final once every peak within MAX_SPAN frames after it is known.
        times = self._peaks.times
        if final:
            anchors = len(times)
        else:
            anchors = int(np.searchsorted(times, self._next_block - MAX_SPAN, side="left"))
        quads = build_quads(self._peaks, anchors)
        self._peaks = _take_peaks(self._peaks, slice(anchors, None))
        return quads


def extract(samples: Samples) -> Quads:
    extractor = Extractor()
    return Quads.concat([extractor.feed(samples), extractor.finish()])
