"""The recognizer chain: what each recognizer is given, and a recognizer that cannot listen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from flask import Flask

from set2tracks.pipeline.pcm import DecodedAudio, decode_to_file
from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.pipeline.recognize import (
    LibraryRecognizer,
    Progress,
    Skipped,
    Stretch,
    recognize,
    unknown_stretches,
)
from set2tracks.sets.models import FoundBy
from tests.pipeline.conftest import Music, Places, index_library


def play(start: float, end: float, title: str | None = "Track") -> Play:
    track = TrackRef(title, library_file_id=hash(title) % 1000) if title else None
    return Play(start, end, track)


def test_unknown_stretches_are_what_no_identified_play_covers() -> None:
    plays = [play(10, 60, "A"), play(50, 100, "B"), play(100, 130, None), play(140, 150, "C")]

    assert unknown_stretches(plays, 200) == [
        Stretch(0, 10),
        Stretch(100, 140),
        Stretch(150, 200),
    ]
    assert unknown_stretches(plays, 200, min_seconds=15) == [Stretch(100, 140), Stretch(150, 200)]
    assert unknown_stretches([], 30) == [Stretch(0, 30)]
    assert unknown_stretches([play(0, 30, "A")], 30) == []


class Heard:
    """A recognizer that hears given plays, and remembers what it was asked about."""

    def __init__(self, name: str, plays: Sequence[Play]) -> None:
        self.name = name
        self.plays = list(plays)
        self.asked: list[list[Stretch]] = []

    def recognize(
        self, audio: DecodedAudio, found: Sequence[Play], on_progress: Progress
    ) -> list[Play]:
        unknown = unknown_stretches(found, audio.duration)
        self.asked.append(unknown)
        on_progress(0.5)
        return [p for p in self.plays if any(p.start < s.end and p.end > s.start for s in unknown)]


class CannotListen:
    name = "shazam"

    def recognize(
        self, audio: DecodedAudio, found: Sequence[Play], on_progress: Progress
    ) -> list[Play]:
        raise Skipped("no Shazam client is configured")


@pytest.fixture
def audio(music: Music, tmp_path: Path) -> DecodedAudio:
    return decode_to_file(music.mix, tmp_path, max_seconds=3600)


def test_each_recognizer_hears_what_the_ones_before_left_unknown(audio: DecodedAudio) -> None:
    first = Heard("library", [play(0, 30, "A"), play(60, 90, "B")])
    second = Heard("windows", [play(35, 50, "C")])
    done: list[float] = []

    recognition = recognize(audio, [first, CannotListen(), second], done.append)

    assert first.asked == [[Stretch(0, audio.duration)]]
    assert second.asked == [[Stretch(30, 60), Stretch(90, audio.duration)]]
    assert [p.track.title for p in recognition.plays if p.track] == ["A", "C", "B"]
    assert recognition.skipped == [("shazam", "no Shazam client is configured")]
    assert done == sorted(done)
    assert done[-1] == 1.0


def test_a_recognizer_is_not_asked_once_everything_is_known(audio: DecodedAudio) -> None:
    first = Heard("library", [play(0, audio.duration, "A")])
    second = Heard("windows", [play(35, 50, "C")])

    recognition = recognize(audio, [first, second], lambda done: None)

    assert second.asked == []
    assert len(recognition.plays) == 1


def test_the_library_recognizer_is_skipped_while_the_library_is_empty(
    app: Flask, audio: DecodedAudio, places: Places, tmp_path: Path
) -> None:
    recognition = recognize(audio, [LibraryRecognizer(tmp_path)], lambda done: None)

    assert recognition.plays == []
    ((name, why),) = recognition.skipped
    assert name == "library"
    assert why.startswith("the library is empty")


def test_the_library_recognizer_names_the_library_files_it_hears(
    app: Flask, music: Music, audio: DecodedAudio, places: Places, tmp_path: Path
) -> None:
    index_library(music)
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    plays = LibraryRecognizer(scratch).recognize(audio, [], lambda done: None)

    assert [p.track.title for p in plays if p.track] == ["Alpha", "Beta", "Gamma"]
    assert all(p.found_by == FoundBy.LIBRARY for p in plays)
    assert all(p.track and p.track.library_file_id for p in plays)
    assert plays[1].speed == pytest.approx(1.04, abs=0.01)
    assert list(scratch.iterdir()) == []  # the engine's spectrogram went with its folder
