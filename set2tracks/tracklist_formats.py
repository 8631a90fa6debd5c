"""Tracklists as text: timestamped lines and CUE sheets.

Plays may overlap (crossfades); stretches no identified play covers for ``UNKNOWN_GAP`` seconds or
more are shown as ``ID - ID``, the DJ world's way of writing "unidentified".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from set2tracks.pipeline.plays import Play

UNKNOWN = "ID"
UNKNOWN_GAP = 20.0


@dataclass(frozen=True)
class Line:
    start: float
    title: str
    artist: str


def lines(plays: Sequence[Play], duration: float) -> list[Line]:
    """The identified plays in order with the unidentified stretches between them."""
    result: list[Line] = []
    covered = 0.0
    for play in sorted(plays, key=lambda item: (item.start, item.end)):
        if play.track is None:
            continue  # an unknown row: the gap it leaves is shown as one
        if play.start - covered >= UNKNOWN_GAP:
            result.append(Line(covered, UNKNOWN, UNKNOWN))
        result.append(Line(play.start, play.track.title, play.track.artist or UNKNOWN))
        covered = max(covered, play.end)
    if duration - covered >= UNKNOWN_GAP:
        result.append(Line(covered, UNKNOWN, UNKNOWN))
    return result


def timestamp(seconds: float, hours: bool) -> str:
    whole = max(int(seconds), 0)
    if hours:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{whole // 60:02d}:{whole % 60:02d}"


def to_text(plays: Sequence[Play], duration: float) -> str:
    """``mm:ss Artist - Title`` per line (``h:mm:ss`` for mixes of an hour or more)."""
    hours = duration >= 3600
    return "".join(
        f"{timestamp(line.start, hours)} {line.artist} - {line.title}\n"
        for line in lines(plays, duration)
    )


def _cue_text(value: str) -> str:
    # CUE sheets have no escaping: a double quote would end the field.
    return " ".join(value.replace('"', "'").split())


def _cue_time(seconds: float) -> str:
    frames = max(round(seconds * 75), 0)  # CUE counts 75 frames per second
    return f"{frames // 4500:02d}:{frames // 75 % 60:02d}:{frames % 75:02d}"


def to_cue(plays: Sequence[Play], duration: float, audio: Path, title: str) -> str:
    kind = {".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}.get(audio.suffix.lower(), "WAVE")
    out = [
        'REM COMMENT "Set2Tracks"',
        f'TITLE "{_cue_text(title)}"',
        f'FILE "{_cue_text(audio.name)}" {kind}',
    ]
    for number, line in enumerate(lines(plays, duration), start=1):
        out += [
            f"  TRACK {number:02d} AUDIO",
            f'    TITLE "{_cue_text(line.title)}"',
            f'    PERFORMER "{_cue_text(line.artist)}"',
            f"    INDEX 01 {_cue_time(line.start)}",
        ]
    return "\n".join(out) + "\n"
