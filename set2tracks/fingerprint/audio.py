"""Decoding audio for the fingerprint engine: ffmpeg streams mono float32 samples.

Nothing here holds a whole file: callers get blocks of samples as ffmpeg produces them,
so a four-hour mix costs the same memory as a four-minute track.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
BLOCK_SECONDS = 30.0
READ_AHEAD_BLOCKS = 4  # two minutes of audio decoded ahead of the caller at most

Samples = npt.NDArray[np.float32]

# ffmpeg reads whatever an input names: an HLS playlist or an ffconcat script renamed .mp3
# would make it open other local files or URLs. Inputs may only be local files, and only
# the audio containers a music library or a recorded mix comes in.
PROTOCOLS = "file,pipe"
AUDIO_DEMUXERS = "mp3,flac,wav,w64,ogg,mov,aac,aiff,matroska,asf,wv,ape,caf"


def file_url(path: Path) -> str:
    """``path`` as ffmpeg must be given it, as an input or an output: a local file."""
    # "file:" and an absolute path: a name like "set:1.mp3" is not read as a protocol.
    return f"file:{Path(path).absolute()}"


def input_args(path: Path) -> list[str]:
    """ffmpeg/ffprobe options that open ``path`` as a local audio file and nothing else."""
    return [
        "-protocol_whitelist",
        PROTOCOLS,
        "-format_whitelist",
        AUDIO_DEMUXERS,
        "-i",
        file_url(path),
    ]


class AudioError(Exception):
    """ffmpeg could not decode the file; the message says why in one line."""


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise AudioError(
            "ffmpeg not found: install it (Debian/Ubuntu: sudo apt-get install ffmpeg;"
            " macOS: brew install ffmpeg)"
        )
    return path


def decode(
    path: Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = BLOCK_SECONDS,
) -> Iterator[Samples]:
    """Yield the audio of ``path`` as mono float32 blocks at ``sample_rate``.

    Raises ``AudioError`` once the stream ends if ffmpeg failed (not audio, unreadable).
    """
    command = [ffmpeg_path(), "-nostdin", "-v", "error"]
    if start > 0:
        command += ["-ss", f"{start:.4f}"]
    command += input_args(path)
    if duration is not None:
        command += ["-t", f"{max(duration, 0.0):.4f}"]
    command += ["-vn", "-sn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    block_bytes = int(block_seconds * sample_rate) * 4
    # A corrupt file can make ffmpeg write an error per frame: a file, not a pipe, takes
    # them so ffmpeg never blocks on a full stderr while we read stdout.
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as process,  # noqa: S603
    ):
        assert process.stdout is not None
        # A thread keeps the pipe drained so ffmpeg decodes ahead while the caller computes
        # (a pipe holds 64 KB: without it, ffmpeg would wait for every block to be used).
        blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=READ_AHEAD_BLOCKS)
        stop = threading.Event()
        reader = threading.Thread(
            target=_pump, args=(process.stdout, block_bytes, blocks, stop), daemon=True
        )
        reader.start()
        try:
            pending = b""
            while (chunk := blocks.get()) is not None:
                data = pending + chunk
                usable = len(data) - len(data) % 4
                pending = data[usable:]
                if usable:
                    yield np.frombuffer(data[:usable], dtype=np.float32)
        finally:
            stop.set()
            if process.poll() is None:
                process.kill()
            while reader.is_alive():
                with contextlib.suppress(queue.Empty):
                    blocks.get(timeout=0.1)
            process.wait()
        if process.returncode != 0:
            errors.seek(0)
            raise AudioError(
                _first_line(errors.read()) or f"ffmpeg exited with {process.returncode}"
            )


def _pump(
    stream: IO[bytes], size: int, blocks: queue.Queue[bytes | None], stop: threading.Event
) -> None:
    try:
        while not stop.is_set() and (chunk := stream.read(size)):
            blocks.put(chunk)
    finally:
        blocks.put(None)


def _first_line(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        # ffmpeg prefixes messages with "[demuxer @ 0x55d...]": the address means nothing.
        line = re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line.strip())
        if line:
            return line[:300]
    return ""
