"""Reading audio through FFmpeg: probing a file's headers, and decoding it to samples.

Nothing here holds a whole file: callers get blocks of samples as ffmpeg produces them,
so a four-hour mix costs the same memory as a four-minute track. ``probe`` reads only the
container's headers, so a small file that claims hours is measured without decoding it.

The ffmpeg that runs is the system's when one is on the PATH, else the binary that the
pinned imageio-ffmpeg wheel ships, so a machine with only Python can decode. That binary
comes without ffprobe: ``probe`` then reads what ``ffmpeg -i`` prints about its input.

A probed duration is what the headers claim. For most formats that is exact; an MP3 without
a Xing/VBRI header gets an estimate from its first frame's bit rate, so whoever decodes an
upload should also stop at the longest duration it accepts (``decode(duration=...)``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
BLOCK_SECONDS = 30.0
READ_AHEAD_BLOCKS = 4  # two minutes of audio decoded ahead of the caller at most

Samples = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)

# Probing reads headers and takes milliseconds; a file that keeps ffmpeg busy longer is
# hostile or broken, and the worker must not wait on it.
PROBE_TIMEOUT = 30.0

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
    """ffmpeg could not read the file; the message says why in one line."""


@dataclass(frozen=True)
class FFmpeg:
    """The ffmpeg binary this process runs, and whether it is the bundled one."""

    path: str
    bundled: bool


@functools.cache
def resolve_ffmpeg() -> FFmpeg:
    """Find the ffmpeg to run: the system's when on the PATH, else the bundled one."""
    if (path := shutil.which("ffmpeg")) is not None:
        logger.info("Using the system ffmpeg: %s", path)
        return FFmpeg(path, bundled=False)
    try:
        # Imported here: only machines without a system ffmpeg need it. It returns its own
        # binary, or the one IMAGEIO_FFMPEG_EXE names (an operator's explicit choice).
        import imageio_ffmpeg

        path = str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        # Not cached (functools.cache keeps no exception): installing ffmpeg fixes a
        # running worker on its next file.
        raise AudioError(
            "ffmpeg not found: install it (Debian/Ubuntu: sudo apt-get install ffmpeg;"
            " macOS: brew install ffmpeg) or reinstall the requirements (imageio-ffmpeg)"
        ) from None
    logger.info("No ffmpeg on the PATH: using the one imageio-ffmpeg ships: %s", path)
    return FFmpeg(path, bundled=True)


def ffmpeg_path() -> str:
    """Return the ffmpeg binary to run (see ``resolve_ffmpeg``)."""
    return resolve_ffmpeg().path


def ffprobe_path() -> str | None:
    """Return the system ffprobe, or None: the bundled FFmpeg comes without one."""
    return shutil.which("ffprobe")


@dataclass(frozen=True)
class Probe:
    """What a file's headers say about it: how long it lasts and what audio it holds."""

    duration: float  # seconds, to the centisecond (as precise as ``ffmpeg -i`` reports)
    format_name: str  # the demuxer's names, e.g. "mp3" or "mov,mp4,m4a,3gp,3g2,mj2"
    audio_codec: str | None  # of the first audio stream, e.g. "mp3", "aac", "flac"
    audio_streams: int


NOT_ACCEPTED = (
    "not an audio file in an accepted format"
    " (MP3, FLAC, WAV, Ogg, Opus, M4A/AAC, AIFF, WebM/MKA, WMA, WavPack, APE, CAF)"
)
NOT_READABLE = "not an audio file that can be read (damaged, or not audio at all)"


def probe(path: Path, *, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Read the duration and audio streams of ``path`` from its headers, decoding nothing.

    Raises ``AudioError`` with a one-line message for a missing or empty file, a file that
    is not in an accepted audio format, one with no audio stream or no known duration, or
    one that keeps the prober busy longer than ``timeout`` seconds.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("file not found")
    if path.stat().st_size == 0:
        raise AudioError("the file is empty")
    ffprobe = ffprobe_path()
    if ffprobe is not None:
        format_name, codecs, micros = _read_ffprobe(ffprobe, path, timeout)
    else:
        format_name, codecs, micros = _read_ffmpeg(ffmpeg_path(), path, timeout)
    if not codecs:
        raise AudioError("no audio in this file (a video or a picture without sound?)")
    if micros is None:
        raise AudioError("the file does not say how long it lasts (unknown duration)")
    return Probe(
        # Rounded as ``ffmpeg -i`` prints it (half up, to the centisecond), so that both
        # probers give the same figure for the same file.
        duration=(micros + 5_000) // 10_000 / 100,
        format_name=format_name,
        audio_codec=codecs[0] or None,
        audio_streams=len(codecs),
    )


# What a prober found: the format's names, the codec of each audio stream in order, and the
# duration in microseconds when the headers give one.
_Found = tuple[str, list[str], int | None]


def _run_prober(command: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        # An argument list, never a shell; run() kills the prober when the timeout fires.
        return subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise AudioError(
            f"reading the file took longer than {timeout:g} s: it cannot be used"
        ) from None


def _read_ffprobe(ffprobe: str, path: Path, timeout: float) -> _Found:
    result = _run_prober(
        [
            ffprobe,
            "-v",
            "error",
            "-show_entries",
            "format=format_name,duration:stream=codec_type,codec_name",
            "-of",
            "json",
            *input_args(path),
        ],
        timeout,
    )
    try:
        info = json.loads(result.stdout)
        format_name = str(info["format"]["format_name"])
    except (ValueError, KeyError, TypeError):
        raise _refusal(result.stderr, path) from None
    if result.returncode != 0:
        raise _refusal(result.stderr, path)
    codecs = [
        str(stream.get("codec_name", ""))
        for stream in info.get("streams", [])
        if stream.get("codec_type") == "audio"
    ]
    try:
        # "3.030204": whole microseconds (FFmpeg's time base), read without float error.
        micros: int | None = int(Decimal(str(info["format"]["duration"])) * 1_000_000)
    except (KeyError, InvalidOperation):
        micros = None
    return format_name, codecs, micros


_FORMAT_LINE = re.compile(r"^Input #0, (.+)$")
_DURATION_LINE = re.compile(r"^  Duration: (?:(\d+):(\d\d):(\d\d)\.(\d\d)|N/A),", re.MULTILINE)
# "  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, ..."
_STREAM_LINE = re.compile(r"^  Stream #0:\d+\S*?: (\w+): ([^\s,]+)", re.MULTILINE)


def _read_ffmpeg(ffmpeg: str, path: Path, timeout: float) -> _Found:
    # Given an input and no output, ffmpeg prints what the input's headers say, then exits
    # with "At least one output file must be specified": nothing is decoded.
    command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info", *input_args(path)]
    result = _run_prober(command, timeout)
    # surrogateescape: a file name that is not UTF-8 comes back as Path spelled it.
    stderr = result.stderr.decode("utf-8", "surrogateescape")
    # Read only what follows our own file name. Tags may hold any text, but ffmpeg prints
    # them indented deeper than the lines read here; the name, which we chose, is skipped.
    marker = f", from '{file_url(path)}':\n"
    at = stderr.find(marker)
    header = _FORMAT_LINE.match(stderr[stderr.rfind("\n", 0, at) + 1 : at]) if at >= 0 else None
    if header is None:
        raise _refusal(result.stderr, path)
    # This input's section ends where ffmpeg complains about the missing output.
    body = stderr[at + len(marker) :].split("\nAt least one output file", 1)[0]
    codecs = [codec for kind, codec in _STREAM_LINE.findall(body) if kind == "Audio"]
    duration = _DURATION_LINE.search(body)
    micros = None
    if duration is not None and duration.group(1) is not None:
        hours, minutes, seconds, centis = (int(group) for group in duration.groups())
        micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + centis * 10_000
    return header.group(1), codecs, micros


def _refusal(stderr: bytes, path: Path) -> AudioError:
    reason = _first_line(stderr)
    logger.info("Refused %s: %s", path.name, reason)
    # The demuxer allow-list refused what the content looks like (a playlist, a concat
    # script, a picture): say what is accepted rather than what ffmpeg saw.
    if b"not on whitelist" in stderr:
        return AudioError(NOT_ACCEPTED)
    return AudioError(NOT_READABLE)


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
