"""The *recognize* stage: a chain of recognizers, each listening to what is still unknown.

A recognizer gets the decoded set (``pcm.DecodedAudio``: its duration, its samples as a stream
of blocks or as windows) and the plays found before it, and returns the plays it hears. The
chain runs them in order: the own library first, whose engine takes the whole stream at
once; the next issue adds Shazam, which asks for ~12 s windows inside the stretches still
unknown (``unknown_stretches``) and returns plays the same way. A recognizer that cannot listen
now (an empty library, a service not configured) raises ``Skipped``: the chain notes why and
goes on with the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from set2tracks.fingerprint import library
from set2tracks.fingerprint.audio import Samples
from set2tracks.pipeline.pcm import DecodedAudio
from set2tracks.pipeline.plays import Play

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]  # share of the recognizer's work done, 0 to 1


class Skipped(Exception):
    """The recognizer cannot listen now; the message says why, for the log and the attempt."""


@dataclass(frozen=True)
class Stretch:
    """Seconds of a set that no play covers yet."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


class Recognizer(Protocol):
    """Something that hears tracks in a decoded set."""

    name: str

    def recognize(
        self, audio: DecodedAudio, found: Sequence[Play], on_progress: Progress
    ) -> list[Play]:
        """Return the plays heard where ``found`` leaves the set unknown; raise ``Skipped``."""
        ...


def unknown_stretches(
    plays: Sequence[Play], duration: float, min_seconds: float = 0.0
) -> list[Stretch]:
    """Return the stretches of ``0..duration`` that no identified play covers, in order.

    Stretches shorter than ``min_seconds`` are left out: too short to ask anyone about.
    """
    stretches: list[Stretch] = []
    covered = 0.0
    for play in sorted((p for p in plays if p.track is not None), key=lambda p: p.start):
        if play.start > covered:
            stretches.append(Stretch(covered, min(play.start, duration)))
        covered = max(covered, play.end)
    if duration > covered:
        stretches.append(Stretch(covered, duration))
    return [s for s in stretches if s.duration > 0 and s.duration >= min_seconds]


@dataclass(frozen=True)
class Recognition:
    """What the chain heard, and which recognizers could not listen and why."""

    plays: list[Play]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def recognize(
    audio: DecodedAudio, recognizers: Sequence[Recognizer], on_progress: Progress
) -> Recognition:
    """Run ``recognizers`` in order, each on what the ones before left unknown."""
    found: list[Play] = []
    skipped: list[tuple[str, str]] = []
    count = max(len(recognizers), 1)
    for number, recognizer in enumerate(recognizers):
        if not unknown_stretches(found, audio.duration):
            logger.info("recognizer %s not needed: every second is identified", recognizer.name)
            continue

        def share(done: float, number: int = number) -> None:
            on_progress((number + min(max(done, 0.0), 1.0)) / count)

        try:
            heard = recognizer.recognize(audio, found, share)
        except Skipped as why:
            logger.info("recognizer %s skipped: %s", recognizer.name, why)
            skipped.append((recognizer.name, str(why)))
            continue
        logger.info("recognizer %s heard %s play(s)", recognizer.name, len(heard))
        found.extend(heard)
        share(1.0)
    found.sort(key=lambda play: (play.start, play.end))
    return Recognition(found, skipped)


class LibraryRecognizer:
    """The own library's fingerprint engine, which matches the whole stream in one pass."""

    name = "library"

    def __init__(self, scratch_dir: Path, min_confidence: float = library.MIN_CONFIDENCE) -> None:
        self.scratch_dir = scratch_dir
        self.min_confidence = min_confidence

    def recognize(
        self, audio: DecodedAudio, found: Sequence[Play], on_progress: Progress
    ) -> list[Play]:
        """Return the plays of library files, keeping those that reach an unknown stretch."""
        try:
            identified = library.identify_stream(
                _counted(audio, on_progress),
                min_confidence=self.min_confidence,
                scratch_dir=self.scratch_dir,
            )
        except library.LibraryError as error:  # only "the library is empty" comes here
            raise Skipped(str(error)) from error
        unknown = unknown_stretches(found, audio.duration)
        return [play for play in identified.plays if _reaches(play, unknown)]


def _counted(audio: DecodedAudio, on_progress: Progress) -> Iterator[Samples]:
    done = 0
    for block in audio.blocks():
        yield block
        done += len(block)
        on_progress(done / max(audio.samples, 1))


def _reaches(play: Play, stretches: Sequence[Stretch]) -> bool:
    return any(play.start < stretch.end and play.end > stretch.start for stretch in stretches)
