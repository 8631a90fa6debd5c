"""The engine's API: fingerprint one file, identify a stream. No Flask, no database."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from set2tracks.fingerprint import scan
from set2tracks.fingerprint.audio import AudioError, Samples, decode
from set2tracks.fingerprint.features import Extractor, Peaks, Quads, concat_peaks
from set2tracks.fingerprint.index import IndexReader
from set2tracks.fingerprint.matcher import Found, Matcher, Tracklist
from set2tracks.fingerprint.refine import ReferencePeaks, SpectrogramTape, refine

__all__ = ["FileFingerprints", "Found", "Tracklist", "fingerprint_file", "identify"]

# Shorter audio cannot hold enough quads to be told apart from chance.
MIN_SECONDS = 5.0


@dataclass(frozen=True)
class FileFingerprints:
    path: Path
    content_hash: str
    size_bytes: int
    tags: scan.Tags
    duration: float
    quads: Quads
    peaks: Peaks


class Unusable(Exception):
    """The file cannot be indexed; the message is the reason shown to the user."""


def fingerprint_file(path: Path, content_hash: str | None = None) -> FileFingerprints:
    """Decode and fingerprint ``path``; raise ``Unusable`` with a one-line reason."""
    try:
        size = path.stat().st_size
        digest = content_hash or scan.content_hash(path)
    except OSError as error:
        raise Unusable(f"cannot read the file ({error.strerror or error})") from error
    extractor = Extractor(keep_peaks=True)
    parts = []
    try:
        for block in decode(path):
            parts.append(extractor.feed(block))
        parts.append(extractor.finish())
    except AudioError as error:
        raise Unusable(f"not audio ffmpeg can decode ({error})") from error
    quads = Quads.concat(parts)
    if extractor.seconds < MIN_SECONDS:
        raise Unusable(
            f"too short ({extractor.seconds:.1f} s of audio; {MIN_SECONDS:.0f} s needed)"
        )
    if len(quads) < extractor.seconds:
        raise Unusable("silent or without any distinct sound to fingerprint")
    return FileFingerprints(
        path=path,
        content_hash=digest,
        size_bytes=size,
        tags=scan.read_tags(path),
        duration=round(extractor.seconds, 3),
        quads=quads,
        peaks=concat_peaks(extractor.kept_peaks or []),
    )


def identify(
    reader: IndexReader,
    blocks: Iterable[Samples],
    *,
    reference_peaks: ReferencePeaks | None = None,
    scratch_dir: Path | None = None,
) -> Tracklist:
    """Every play of an indexed file in the stream of mono 8 kHz samples, in mix order.

    Given the library files' stored peaks (``IndexReader.peaks``), each play's start and
    end move to where its fades begin and end (``refine.py``); without, they are where the
    fingerprints first and last recognise the track. The spectrogram kept for that goes to
    a temporary folder in ``scratch_dir`` (default: the system's).
    """
    if reference_peaks is None:
        return Matcher(reader).identify(blocks)
    with tempfile.TemporaryDirectory(prefix="set2tracks-identify-", dir=scratch_dir) as folder:
        tape = SpectrogramTape(Path(folder))
        try:
            tracklist = Matcher(reader).identify(blocks, tape.write)
        finally:
            tape.close()
        found = [refine(play, tape.frames, reference_peaks) for play in tracklist.found]
    found.sort(key=lambda play: (play.start, play.end))
    return Tracklist(duration=tracklist.duration, found=found)
