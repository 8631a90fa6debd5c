"""Find a library's audio files and read what their tags say about them.

``scan`` turns the files and folders a user names into the list of files to index, reporting
what it could not look at instead of failing; ``read_tags`` reads title, artist, album and
ISRC with mutagen, falling back to the file name; ``content_hash`` recognizes a file that
moved or was renamed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import mutagen

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp3",
        ".flac",
        ".wav",
        ".aif",
        ".aiff",
        ".aifc",
        ".m4a",
        ".mp4",
        ".aac",
        ".alac",
        ".ogg",
        ".oga",
        ".opus",
        ".wma",
        ".wv",
        ".ape",
    }
)

MAX_TAG_LENGTH = 300
HASH_BLOCK = 1024 * 1024
ARTIST_TITLE_SEPARATOR = " - "
ISRC_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{3}\d{7}")

_Report = Callable[[Path, str], None]


class _TagLookup(Protocol):
    """What every mutagen tag container offers: a mapping from keys to values."""

    def get(self, key: str) -> object: ...


# Keys to try, in order, for each field. The tag object mutagen returns is the container's
# own (ID3 frames for MP3/AIFF/WAV, atoms for MP4, Vorbis comments for FLAC/Ogg/Opus, APEv2
# for WavPack/Monkey's Audio, ASF attributes for WMA), so only one family ever matches. The
# raw tags are read rather than mutagen's "easy" view because the easy view hides
# TXXX:ISRC (what ffmpeg writes for MP3) and the iTunes freeform ISRC atom, and has no view
# at all for AIFF, WAV and WMA.
_TAG_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("title", "TIT2", "\xa9nam", "Title"),
    "artist": ("artist", "TPE1", "\xa9ART", "Author"),
    "album": ("album", "TALB", "\xa9alb", "WM/AlbumTitle"),
    "isrc": ("isrc", "TSRC", "TXXX:ISRC", "----:com.apple.iTunes:ISRC", "WM/ISRC", "ISRC"),
}


@dataclass(frozen=True)
class Tags:
    """What a file says about itself; ``title`` is never empty."""

    title: str
    artist: str | None
    album: str | None
    isrc: str | None


@dataclass(frozen=True)
class ScanResult:
    """The audio files found, absolute and sorted, and the paths that could not be looked at."""

    files: list[Path]
    problems: list[tuple[Path, str]]


def scan(paths: Iterable[Path]) -> ScanResult:
    """Collect the audio files in ``paths``: named files always, folders' audio files."""
    found: set[Path] = set()
    problems: list[tuple[Path, str]] = []

    def report(path: Path, reason: str) -> None:
        if (path, reason) not in problems:
            problems.append((path, reason))

    for given in paths:
        path = Path(given)
        try:
            mode = os.stat(path).st_mode
        except OSError as error:
            report(path, _reason(error, path))
            continue
        if stat.S_ISREG(mode):
            found.add(path.resolve())
        elif stat.S_ISDIR(mode):
            _walk(path.resolve(), found, report)
        else:
            report(path, "not a file or folder")
    return ScanResult(files=sorted(found), problems=problems)


def read_tags(path: Path) -> Tags:
    """Read title, artist, album and ISRC, falling back to the file name for the title."""
    values = _tag_values(path)
    title = values.get("title")
    artist = values.get("artist")
    if title is None:
        title, named_artist = _from_file_name(path)
        artist = artist or named_artist
    return Tags(title=title, artist=artist, album=values.get("album"), isrc=_isrc(values))


def content_hash(path: Path) -> str:
    """Return the SHA-256 of the file's bytes as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _walk(top: Path, found: set[Path], report: _Report) -> None:
    def on_error(error: OSError) -> None:
        failed = Path(error.filename) if error.filename else top
        report(failed, _reason(error, failed))

    # followlinks=False: a symlink pointing up the tree would otherwise loop forever.
    for folder, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in filenames:
            # Hidden files include macOS "._track.mp3" resource forks, which are not audio.
            if name.startswith(".") or Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            path = Path(folder, name)
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError as error:
                report(path, _reason(error, path))
                continue
            if regular:
                found.add(path.resolve())
            else:
                report(path, "not a file or folder")


def _reason(error: OSError, path: Path) -> str:
    if error.errno == errno.ENOENT:
        return "broken symbolic link" if path.is_symlink() else "does not exist"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.ENOTDIR:
        return "does not exist"
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    return error.strerror or str(error)


def _tag_values(path: Path) -> dict[str, str]:
    # mutagen raises MutagenError for files it recognizes as broken, but struct, index,
    # value and Unicode errors escape from corrupt headers, and OSError from unreadable
    # files: none of them may stop an import of thousands of files.
    try:
        audio = mutagen.File(path)
        tags = audio.tags if audio is not None else None
        if tags is None:
            return {}
        values = {}
        for field, keys in _TAG_KEYS.items():
            value = _first_value(tags, keys)
            if value is not None:
                values[field] = value
        return values
    except Exception as error:
        logger.info("Cannot read tags of %s: %s", path, error)
        return {}


def _first_value(tags: _TagLookup, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        try:
            value = tags.get(key)
        except (KeyError, ValueError, TypeError):
            # Vorbis comments refuse keys outside printable ASCII, such as MP4's "\xa9nam".
            continue
        text = _clean(_as_text(value))
        if text is not None:
            return text
    return None


def _as_text(value: object) -> str | None:
    """The first string of a tag value, whatever its container's type for it."""
    if value is None or isinstance(value, str | bytes):
        return _decode(value)
    # Lists of strings or attributes, ID3 text frames and APEv2 text values all iterate over
    # their strings.
    if not isinstance(value, Iterable):
        return None
    first = next(iter(value), None)
    return _decode(first) if isinstance(first, str | bytes) else _decode(str(first))


def _decode(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    printable = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    cleaned = " ".join(printable.split())[:MAX_TAG_LENGTH].strip()
    return cleaned or None


def _from_file_name(path: Path) -> tuple[str, str | None]:
    stem = _clean(path.stem) or _clean(path.name) or "Untitled"
    artist, separator, title = stem.partition(ARTIST_TITLE_SEPARATOR)
    if separator and artist.strip() and title.strip():
        return title.strip(), artist.strip()
    return stem, None


def _isrc(values: dict[str, str]) -> str | None:
    raw = values.get("isrc")
    if raw is None:
        return None
    candidate = raw.replace("-", "").replace(" ", "").upper()
    return candidate if ISRC_PATTERN.fullmatch(candidate) else None
