"""The *decode* stage: a set's audio as mono PCM on disk, read back block by block.

ffmpeg decodes the source once into ``audio.f32`` in the job's folder: mono float32 samples
at the analysis rate (``fingerprint.audio.SAMPLE_RATE``), the format the own-library engine
reads, so the pipeline and ``flask identify`` hear exactly the same samples. Nothing holds the
whole set: ffmpeg's output is written as it comes, and recognizers read the file back in
blocks (the whole stream, or windows of it). A four-hour set is 460 MB on disk and a few MB
in memory. Reads go through ``readinto`` rather than a memory map: mapped pages of a file
count in the process's resident memory until the kernel evicts them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from set2tracks.fingerprint.audio import SAMPLE_RATE, Samples, decode

PCM_NAME = "audio.f32"
SAMPLE_BYTES = 4  # float32
BLOCK_SECONDS = 30.0


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded set: mono float32 samples at ``sample_rate`` in ``path``."""

    path: Path
    sample_rate: int
    samples: int

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate

    def blocks(
        self, start: float = 0.0, end: float | None = None, block_seconds: float = BLOCK_SECONDS
    ) -> Iterator[Samples]:
        """Yield the samples from ``start`` to ``end`` seconds in blocks of ``block_seconds``."""
        first = self._index(start)
        last = self.samples if end is None else self._index(end)
        size = max(int(block_seconds * self.sample_rate), 1)
        with self.path.open("rb") as stream:
            stream.seek(first * SAMPLE_BYTES)
            position = first
            while position < last:
                block = np.empty(min(size, last - position), dtype="<f4")
                read = stream.readinto(block.data.cast("B"))
                count = (read or 0) // SAMPLE_BYTES
                if count == 0:
                    return  # the file is shorter than recorded: it was truncated meanwhile
                yield block[:count]
                position += count

    def window(self, start: float, seconds: float) -> Samples:
        """Return the samples of ``seconds`` from ``start`` (shorter at the end of the set)."""
        parts = list(self.blocks(start, start + seconds, block_seconds=max(seconds, 1.0)))
        return np.concatenate(parts) if parts else np.empty(0, dtype="<f4")

    def _index(self, seconds: float) -> int:
        return min(max(math.floor(seconds * self.sample_rate), 0), self.samples)


def decode_to_file(
    source: Path,
    folder: Path,
    *,
    max_seconds: float,
    on_progress: Callable[[float], None] | None = None,
) -> DecodedAudio:
    """Decode ``source`` into ``folder``, at most ``max_seconds`` of it; report seconds done.

    The cap is ffmpeg's own ``-t``: a file whose header lies about its length (or a tiny
    file that decodes to hours) cannot make the job decode, store or analyse more than the
    longest set accepted. Raises ``fingerprint.audio.AudioError`` when ffmpeg fails.
    """
    target = folder / PCM_NAME
    samples = 0
    with target.open("wb") as stream:
        for block in decode(source, duration=max_seconds, sample_rate=SAMPLE_RATE):
            stream.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
            samples += len(block)
            if on_progress is not None:
                on_progress(samples / SAMPLE_RATE)
    return DecodedAudio(target, SAMPLE_RATE, samples)
