"""Music, library and submissions for the pipeline's tests.

Generated once per session: four tone tracks and a mix that plays Alpha, then Delta (never
indexed), then Beta sped up 4 %, then Gamma. Each test indexes Alpha, Beta and Gamma into its
own library folder and uploads a copy of the mix into its own UPLOAD_DIR.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from set2tracks.extensions import db
from set2tracks.fingerprint import library, scan
from set2tracks.fingerprint.audio import ffmpeg_path
from set2tracks.fingerprint.mixes import MixPlan, Segment, TruthEntry, build_mix, tone_track
from set2tracks.sets.models import SetSource, Submission, SubmissionAttempt
from tests.factories import UserFactory

SECONDS = {"alpha": 40.0, "beta": 40.0, "gamma": 40.0, "delta": 36.0}
TITLES = {"alpha": "Alpha", "beta": "Beta", "gamma": "Gamma"}


@dataclass(frozen=True)
class Music:
    library: Path  # alpha.mp3, beta.flac, gamma.mp3, tagged with their titles
    mix: Path  # alpha, delta, beta at 1.04x, gamma
    truth: list[TruthEntry]
    long_mix: Path  # the mix, then 25 minutes of quiet noise: a job that takes a while


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(
        [ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True
    )


@pytest.fixture(scope="session")
def music(tmp_path_factory: pytest.TempPathFactory) -> Music:
    root = tmp_path_factory.mktemp("pipeline-music").resolve()
    raw = root / "raw"
    folder = root / "library"
    raw.mkdir()
    folder.mkdir()
    sources = {name: raw / f"{name}.wav" for name in SECONDS}
    with ThreadPoolExecutor(len(sources)) as pool:
        list(
            pool.map(
                tone_track,
                sources.values(),
                [SECONDS[name] for name in sources],
                range(31, 31 + len(sources)),
            )
        )
    for name, title in TITLES.items():
        suffix = ".flac" if name == "beta" else ".mp3"
        ffmpeg(
            "-i",
            sources[name],
            "-metadata",
            f"title={title}",
            "-metadata",
            f"artist=Artist {title[0]}",
            folder / f"{name}{suffix}",
        )
    mix = root / "mix.mp3"
    truth = build_mix(
        MixPlan(
            segments=[
                Segment(sources["alpha"], 4.0, 30.0),
                Segment(sources["delta"], 0.0, 34.0),
                Segment(sources["beta"], 4.0, 33.0, speed=1.04),
                Segment(sources["gamma"], 2.0, 34.0),
            ],
            crossfade=4.0,
        ),
        mix,
    )
    long_mix = root / "long-mix.flac"
    ffmpeg(
        "-i",
        mix,
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=colour=pink:amplitude=0.02:sample_rate=16000:duration=1500",
        "-filter_complex",
        "[0:a]aresample=16000,pan=mono|c0=c0[a];[a][1:a]concat=n=2:v=0:a=1",
        "-ac",
        "1",
        long_mix,
    )
    return Music(library=folder, mix=mix, truth=truth, long_mix=long_mix)


@dataclass(frozen=True)
class Places:
    uploads: Path
    work: Path
    index: Path


@pytest.fixture
def places(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Places:
    """This test's own UPLOAD_DIR, WORK_DIR and fingerprint index, in the session app."""
    found = Places(tmp_path / "uploads", tmp_path / "work", tmp_path / "index")
    found.uploads.mkdir()
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(found.uploads))
    monkeypatch.setitem(app.config, "WORK_DIR", str(found.work))
    monkeypatch.setitem(app.config, "FINGERPRINT_DIR", str(found.index))
    return found


def index_library(music: Music) -> None:
    """Index Alpha, Beta and Gamma into the current app's library (committed)."""
    report = library.add(scan.scan([music.library]), jobs=1)
    assert len(report.indexed) == 3, report.problems


def upload(places: Places, source: Path, **values: object) -> Submission:
    """A committed upload submission of a copy of ``source``, as the submit page leaves it."""
    target = places.uploads / f"upload-{len(list(places.uploads.iterdir()))}{source.suffix}"
    shutil.copy(source, target)
    user = UserFactory()
    submission = Submission(
        source=SetSource.UPLOAD,
        upload_path=str(target),
        upload_name=f"Friday night{source.suffix}",
        upload_size=target.stat().st_size,
        user_id=user.id,
        **values,
    )
    db.session.add(submission)
    db.session.commit()
    return submission


def attempts(submission_id: int) -> list[SubmissionAttempt]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(SubmissionAttempt)
            .where(SubmissionAttempt.submission_id == submission_id)
            .order_by(SubmissionAttempt.number)
        )
    )


def reload(submission_id: int) -> Submission:
    db.session.expire_all()
    submission = db.session.get(Submission, submission_id)
    assert submission is not None
    return submission


@pytest.fixture
def no_leftovers(places: Places) -> Iterator[None]:
    """After the test, the job left nothing in WORK_DIR."""
    yield
    left = sorted(entry.name for entry in places.work.iterdir()) if places.work.exists() else []
    assert left == [], f"the job left {left} in WORK_DIR"
