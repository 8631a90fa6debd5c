"""The engine's API: fingerprint one file, identify a stream. No Flask, no database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from set2tracks.fingerprint import scan
from set2tracks.fingerprint.audio import AudioError, Samples, decode
from set2tracks.fingerprint.features import Extractor, Quads
from set2tracks.fingerprint.index import IndexReader
from set2tracks.fingerprint.matcher import Found, Matcher, Tracklist

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


class Unusable(Exception):
    """The file cannot be indexed; the message is the reason shown to the user."""


def fingerprint_file(path: Path, content_hash: str | None = None) -> FileFingerprints:
    """Decode and fingerprint ``path``; raise ``Unusable`` with a one-line reason."""
    try:
        size = path.stat().st_size
        digest = content_hash or scan.content_hash(path)
    except OSError as error:
        raise Unusable(f"cannot read the file ({error.strerror or error})") from error
    extractor = Extractor()
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
    )


def identify(reader: IndexReader, blocks: Iterable[Samples]) -> Tracklist:
    """Every play of an indexed file in the stream of mono 8 kHz samples, in mix order."""
    return Matcher(reader).identify(blocks)
