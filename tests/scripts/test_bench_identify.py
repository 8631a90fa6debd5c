"""The benchmark's scoring: the README's recognition figures are only as right as it is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from set2tracks.fingerprint.mixes import TruthEntry

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_identify.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_identify", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def truth(source: str, start: float, speed: float = 1.0, pitch: float = 1.0) -> TruthEntry:
    return TruthEntry(
        source=source, start=start, end=start + 60, speed=speed, pitch=pitch, source_start=0.0
    )


def found(
    bench: ModuleType, path: str, start: float, speed: float = 1.0, pitch: float = 1.0
) -> Any:
    return bench.Reported(
        path=path, start=start, end=start + 60, speed=speed, pitch=pitch, confidence=1.0, title=None
    )


def test_an_entry_counts_when_its_file_and_start_agree(bench: ModuleType) -> None:
    score = bench.score(
        [truth("/music/a.ogg", 0.0), truth("/music/b.ogg", 50.0, speed=1.05, pitch=1.05)],
        [
            found(bench, "/music/a.ogg", 1.5),
            found(bench, "/music/b.ogg", 64.0, speed=1.0542, pitch=1.02),
        ],
    )

    assert [m.start_error for m in score.matches] == [1.5, 14.0]
    assert score.matches[1].speed_error == pytest.approx(0.4, abs=1e-6)
    assert [m.pitch_right for m in score.matches] == [True, False]
    assert score.missed == []
    assert score.false == []


def test_a_late_start_is_a_miss_and_a_false_entry(bench: ModuleType) -> None:
    score = bench.score([truth("/music/a.ogg", 100.0)], [found(bench, "/music/a.ogg", 115.5)])

    assert score.matches == []
    assert (score.missed, score.false) == ([0], [0])


def test_the_wrong_file_never_counts(bench: ModuleType) -> None:
    score = bench.score([truth("/music/a.ogg", 0.0)], [found(bench, "/music/b.ogg", 0.0)])

    assert (score.missed, score.false) == ([0], [0])


def test_a_track_played_twice_needs_two_entries(bench: ModuleType) -> None:
    twice = [truth("/music/a.ogg", 0.0), truth("/music/a.ogg", 200.0)]

    once = bench.score(twice, [found(bench, "/music/a.ogg", 2.0)])
    both = bench.score(
        twice, [found(bench, "/music/a.ogg", 2.0), found(bench, "/music/a.ogg", 199.0)]
    )

    assert (len(once.matches), once.missed) == (1, [1])
    assert (len(both.matches), both.missed, both.false) == (2, [], [])


def test_each_truth_entry_takes_its_closest_report(bench: ModuleType) -> None:
    score = bench.score(
        [truth("/music/a.ogg", 10.0)],
        [found(bench, "/music/a.ogg", 20.0), found(bench, "/music/a.ogg", 11.0)],
    )

    assert [(m.reported_index, m.start_error) for m in score.matches] == [(1, 1.0)]
    assert score.false == [0]
