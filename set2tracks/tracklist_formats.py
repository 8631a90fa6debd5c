"""Tracklists as text: timestamped lines and CUE sheets.

Entries may overlap (crossfades); stretches no entry covers for ``UNKNOWN_GAP`` seconds or
more are shown as ``ID - ID``, the DJ world's way of writing "unidentified".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

UNKNOWN = "ID"
UNKNOWN_GAP = 20.0


class Timed(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def title(self) -> str: ...
    @property
    def artist(self) -> str | None: ...


@dataclass(frozen=True)
class Line:
    start: float
    title: str
    artist: str


def lines(entries: Sequence[Timed], duration: float) -> list[Line]:
    """The entries in order with the unidentified stretches between them."""
    result: list[Line] = []
    covered = 0.0
    for entry in sorted(entries, key=lambda item: (item.start, item.end)):
        if entry.start - covered >= UNKNOWN_GAP:
            result.append(Line(covered, UNKNOWN, UNKNOWN))
        result.append(Line(entry.start, entry.title, entry.artist or UNKNOWN))
        covered = max(covered, entry.end)
    if duration - covered >= UNKNOWN_GAP:
        result.append(Line(covered, UNKNOWN, UNKNOWN))
    return result


def timestamp(seconds: float, hours: bool) -> str:
    whole = max(int(seconds), 0)
    if hours:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{whole // 60:02d}:{whole % 60:02d}"


def to_text(entries: Sequence[Timed], duration: float) -> str:
    """``mm:ss Artist - Title`` per line (``h:mm:ss`` for mixes of an hour or more)."""
    hours = duration >= 3600
    return "".join(
        f"{timestamp(line.start, hours)} {line.artist} - {line.title}\n"
        for line in lines(entries, duration)
    )


def _cue_text(value: str) -> str:
    # CUE sheets have no escaping: a double quote would end the field.
    return " ".join(value.replace('"', "'").split())


def _cue_time(seconds: float) -> str:
    frames = max(round(seconds * 75), 0)  # CUE counts 75 frames per second
    return f"{frames // 4500:02d}:{frames // 75 % 60:02d}:{frames % 75:02d}"


def to_cue(entries: Sequence[Timed], duration: float, audio: Path, title: str) -> str:
    kind = {".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}.get(audio.suffix.lower(), "WAVE")
    out = [
        'REM COMMENT "Set2Tracks"',
        f'TITLE "{_cue_text(title)}"',
        f'FILE "{_cue_text(audio.name)}" {kind}',
    ]
    for number, line in enumerate(lines(entries, duration), start=1):
        out += [
            f"  TRACK {number:02d} AUDIO",
            f'    TITLE "{_cue_text(line.title)}"',
            f'    PERFORMER "{_cue_text(line.artist)}"',
            f"    INDEX 01 {_cue_time(line.start)}",
        ]
    return "\n".join(out) + "\n"
