"""The mix's spectrogram tape: frames read back as written, without mapping the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from set2tracks.fingerprint import features
from set2tracks.fingerprint.refine import SpectrogramTape

WIDTH = features.HIGH_BIN - features.LOW_BIN + 1


def test_frames_come_back_as_written_and_the_tape_is_not_held_in_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    spec = rng.uniform(-14.0, 5.0, (3000, WIDTH)).astype(np.float32)
    tape = SpectrogramTape(tmp_path)
    tape.write(spec[:1000])
    tape.write(spec[1000:])

    start, frames = tape.frames(10 * features.FRAME_SECONDS, 20 * features.FRAME_SECONDS)
    _, everything = tape.frames(0.0, 10_000.0)

    assert start == 10 * features.FRAME_SECONDS
    assert frames.shape == (10, WIDTH)
    # A byte per bin: within half a level of what was written.
    assert np.abs(frames - spec[10:20]).max() <= SpectrogramTape.STEP / 2 + 1e-4
    assert everything.shape == (3000, WIDTH)
    # Mapped, the edges of every play of a four-hour mix would keep most of its 400 MB
    # tape in the worker's resident memory (it did: 587 MB for one 4-hour upload).
    assert str(tmp_path / "mix-spectrogram.u8") not in Path("/proc/self/maps").read_text()
