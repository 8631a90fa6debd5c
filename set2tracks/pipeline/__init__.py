"""The processing job, stage by stage: vet, fetch, decode, recognize, tracklist, enrich, save.

Only the shapes that other packages rely on live here for now; the stages arrive with the
pipeline issue.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Stage(enum.StrEnum):
    """What a submission is doing now, shown with its progress."""

    VET = "vet"
    FETCH = "fetch"
    DECODE = "decode"
    RECOGNIZE = "recognize"
    TRACKLIST = "tracklist"
    ENRICH = "enrich"
    SAVE = "save"
    NOTIFY = "notify"


@dataclass(frozen=True)
class Hit:
    """One recognizer's answer for a stretch of a set."""

    start: float
    end: float
    confidence: float
    speed: float | None
    title: str
    artist: str
    external_key: str


class Recognizer(Protocol):
    """Finds tracks in a window of mono PCM at the analysis sample rate."""

    name: str

    def recognize(self, samples: bytes, sample_rate: int, offset: float) -> list[Hit]: ...
