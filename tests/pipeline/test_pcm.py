"""The decode stage's PCM file: written as ffmpeg decodes, read back in blocks and windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from set2tracks.fingerprint.audio import SAMPLE_RATE, AudioError, decode
from set2tracks.pipeline.pcm import PCM_NAME, decode_to_file
from tests.pipeline.conftest import Music


def test_the_decoded_file_holds_what_ffmpeg_decodes(music: Music, tmp_path: Path) -> None:
    done: list[float] = []

    audio = decode_to_file(music.mix, tmp_path, max_seconds=3600, on_progress=done.append)

    expected = np.concatenate(list(decode(music.mix)))
    assert audio.path == tmp_path / PCM_NAME
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples == len(expected)
    assert audio.duration == pytest.approx(len(expected) / SAMPLE_RATE)
    assert np.array_equal(np.concatenate(list(audio.blocks())), expected)
    assert done == sorted(done)
    assert done[-1] == pytest.approx(audio.duration)


def test_blocks_and_windows_read_any_stretch(music: Music, tmp_path: Path) -> None:
    audio = decode_to_file(music.mix, tmp_path, max_seconds=3600)
    everything = np.concatenate(list(audio.blocks()))

    blocks = list(audio.blocks(10.0, 25.0, block_seconds=4.0))
    window = audio.window(100.0, 12.0)
    past_the_end = audio.window(audio.duration - 2.0, 12.0)

    assert [len(block) for block in blocks] == [32000, 32000, 32000, 24000]
    assert np.array_equal(np.concatenate(blocks), everything[80000:200000])
    assert np.array_equal(window, everything[800000:896000])
    assert len(past_the_end) == 2 * SAMPLE_RATE
    assert len(audio.window(audio.duration + 5.0, 12.0)) == 0


def test_decoding_stops_at_the_cap(music: Music, tmp_path: Path) -> None:
    audio = decode_to_file(music.mix, tmp_path, max_seconds=10.0)

    assert audio.samples == 10 * SAMPLE_RATE
    assert (tmp_path / PCM_NAME).stat().st_size == 10 * SAMPLE_RATE * 4


def test_a_file_that_is_not_audio_raises(tmp_path: Path) -> None:
    fake = tmp_path / "set.mp3"
    fake.write_text("not audio\n")

    with pytest.raises(AudioError):
        decode_to_file(fake, tmp_path, max_seconds=60)
