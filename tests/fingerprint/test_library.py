"""The own-library workflow on the command line: ``flask library ...`` and ``flask identify``.

The music is generated once per module: three tagged or named tracks in a library folder, a
fourth track that is never indexed, a few files that are not music, and a mix that plays
a library track, the unknown track, then another library track faster. Each test indexes
into its own folder and its own database transaction.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from set2tracks import create_app, tracklist_formats
from set2tracks.extensions import db
from set2tracks.fingerprint import audio, engine, library
from set2tracks.fingerprint.index import SegmentStore
from set2tracks.fingerprint.mixes import MixPlan, Segment, TruthEntry, build_mix, tone_track
from set2tracks.fingerprint.models import FingerprintSegment, LibraryFile
from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import UNKNOWN_ARTIST
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import LibraryFileFactory, SetTrackFactory, TrackFactory

# Seconds of each generated track: the library holds 1:50 of audio.
SECONDS = {"alpha": 40.0, "beta": 40.0, "gamma": 30.0, "delta": 36.0}
ALPHA_ISRC = "GBAYE2600001"
BETA_ISRC = "USRC12600002"
ENTRY_KEYS = {"start", "end", "title", "artist", "path", "track_id", "confidence", "speed", "pitch"}

Run = Callable[..., Result]


@dataclass(frozen=True)
class Music:
    library: Path
    alpha: Path  # library/alpha.mp3, tagged with an ISRC
    beta: Path  # library/sub/beta.flac, tagged with an ISRC
    gamma: Path  # library/sub/deeper/Gamma Artist - Gamma.wav, untagged
    delta: Path  # outside the library, untagged, no artist in its name
    broken: Path  # an .mp3 that holds text
    silence: Path
    notes: Path  # a text file
    mix: Path  # alpha, delta, beta at 1.04x
    truth: list[TruthEntry]


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(
        [audio.ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True
    )


def tags(**values: str) -> list[str]:
    return [arg for key, value in values.items() for arg in ("-metadata", f"{key}={value}")]


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Music:
    root = tmp_path_factory.mktemp("music").resolve()
    raw = root / "raw"
    folder = root / "library"
    junk = root / "junk"
    for made in (raw, folder / "sub" / "deeper", junk):
        made.mkdir(parents=True)
    sources = {name: raw / f"{name}.wav" for name in ("alpha", "beta", "gamma", "delta")}
    alpha = folder / "alpha.mp3"
    beta = folder / "sub" / "beta.flac"
    gamma = folder / "sub" / "deeper" / "Gamma Artist - Gamma.wav"

    # ffmpeg evaluates the tone expression per sample: the four tracks render in parallel.
    with ThreadPoolExecutor(len(sources)) as pool:
        seconds = [SECONDS[name] for name in sources]
        list(pool.map(tone_track, sources.values(), seconds, range(11, 11 + len(sources))))
    ffmpeg(
        "-i",
        sources["alpha"],
        *tags(title="Alpha", artist="Artist A", album="Tones", ISRC=ALPHA_ISRC),
        alpha,
    )
    ffmpeg("-i", sources["beta"], *tags(title="Beta", artist="Artist B", ISRC=BETA_ISRC), beta)
    shutil.copy(sources["gamma"], gamma)
    (folder / "cover.jpg").write_text("not a picture either\n")
    broken = junk / "broken.mp3"
    broken.write_text("this is not audio\n")
    notes = junk / "notes.txt"
    notes.write_text("tracklist ideas\n")
    silence = junk / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "8", silence)
    mix = root / "mix.mp3"
    truth = build_mix(
        MixPlan(
            segments=[
                Segment(sources["alpha"], 4.0, 32.0),
                Segment(sources["delta"], 0.0, 35.5),
                Segment(sources["beta"], 4.0, 33.2, speed=1.04),
            ],
            crossfade=4.0,
        ),
        mix,
    )
    return Music(
        library=folder,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        delta=sources["delta"],
        broken=broken,
        silence=silence,
        notes=notes,
        mix=mix,
        truth=truth,
    )


@pytest.fixture(autouse=True)
def index_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "index"
    monkeypatch.setitem(app.config, "FINGERPRINT_DIR", str(folder))
    return folder


@pytest.fixture
def run(app: Flask) -> Run:
    runner = app.test_cli_runner()

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(args=[str(arg) for arg in args])

    return invoke


def add(run: Run, *paths: Path, jobs: int = 1) -> Result:
    return run("library", "add", "--jobs", str(jobs), *paths)


def identify(run: Run, mix: Path, *options: str) -> Result:
    return run("identify", mix, "--format", "json", *options)


def count(model: type[Any]) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def library_file(path: Path) -> LibraryFile:
    row = db.session.scalar(select(LibraryFile).where(LibraryFile.path == str(path)))
    assert row is not None, f"{path} is not in the library"
    return row


def segment_folders(index_dir: Path) -> set[str]:
    return {entry.name for entry in (index_dir / "segments").iterdir()}


def segment_rows() -> set[str]:
    return set(db.session.scalars(select(FingerprintSegment.name)))


def stores_a_segment(session: Session) -> bool:
    """The session is about to commit an index segment."""
    return any(isinstance(row, FingerprintSegment) for row in session.new)


def played(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    tracks: list[dict[str, Any]] = json.loads(result.stdout)["tracks"]
    return tracks


def fails_cleanly(result: Result, message: str) -> None:
    """The command failed with ``message`` for the user, not with a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert message in result.stderr
    assert "Traceback" not in result.output


# Adding files.


def test_add_indexes_folders_recursively_and_summarises(
    run: Run, music: Music, index_dir: Path
) -> None:
    result = add(run, music.library)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "indexed 3 file(s), 0:01:50 of audio; 0 already indexed; 0 skipped"
    )
    assert re.search(r"110\.0 s of audio in [\d.]+ s \(\d+x real time\)", result.stderr)
    rows = db.session.scalars(select(LibraryFile).order_by(LibraryFile.path)).all()
    assert [row.path for row in rows] == [str(music.alpha), str(music.beta), str(music.gamma)]
    assert all(row.indexed_at is not None and row.fingerprint_count > 0 for row in rows)
    assert [row.duration_seconds for row in rows] == pytest.approx([40.0, 40.0, 30.0], abs=0.1)
    (segment,) = db.session.scalars(select(FingerprintSegment)).all()
    assert segment.rows == sum(row.fingerprint_count for row in rows)
    assert segment_folders(index_dir) == {segment.name}


def test_add_reports_what_it_cannot_index_and_keeps_going(run: Run, music: Music) -> None:
    missing = music.library.parent / "missing.flac"

    # Two worker processes: the reasons come back from the pool like the fingerprints do.
    result = add(run, music.library, music.broken.parent, music.notes, missing, jobs=2)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("indexed 3 file(s), 0:01:50 of audio;")
    assert result.stdout.splitlines()[0].endswith("; 4 skipped")
    skipped = {
        line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in result.stdout.splitlines()[1:]
    }
    assert set(skipped) == {
        f"  skipped {path}" for path in (music.broken, music.notes, music.silence, missing)
    }
    assert skipped[f"  skipped {music.broken}"].startswith("not audio ffmpeg can decode")
    assert skipped[f"  skipped {music.notes}"].startswith("not audio ffmpeg can decode")
    assert skipped[f"  skipped {music.silence}"] == (
        "silent or without any distinct sound to fingerprint"
    )
    assert skipped[f"  skipped {missing}"] == "does not exist"
    # Files of other kinds inside a folder (cover art) are not music and not worth a line.
    assert "cover.jpg" not in result.output
    assert count(LibraryFile) == 3


def test_adding_again_skips_what_is_indexed(run: Run, music: Music) -> None:
    add(run, music.library)
    ids = set(db.session.scalars(select(LibraryFile.id)))
    segments = segment_rows()

    again = add(run, music.library)

    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == (
        "indexed 0 file(s), 0:00:00 of audio; 3 already indexed; 0 skipped"
    )
    assert set(db.session.scalars(select(LibraryFile.id))) == ids
    assert segment_rows() == segments


def test_the_same_audio_under_two_paths_is_indexed_once(
    run: Run, music: Music, tmp_path: Path
) -> None:
    copy = tmp_path.resolve() / "copies" / "alpha (copy).mp3"
    copy.parent.mkdir()
    shutil.copy(music.alpha, copy)

    result = add(run, music.library, copy.parent)
    later = add(run, copy)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("indexed 3 file(s)")
    (kept,) = [
        row.path
        for row in db.session.scalars(select(LibraryFile))
        if Path(row.path).name in {copy.name, music.alpha.name}
    ]
    other = ({str(copy), str(music.alpha)} - {kept}).pop()
    assert f"  skipped {other}: same audio file as {kept}, indexed once" in result.stdout
    assert later.stdout.splitlines()[0] == (
        "indexed 0 file(s), 0:00:00 of audio; 1 already indexed; 0 skipped"
    )
    assert count(LibraryFile) == 3


def test_a_retagged_file_replaces_its_entry(run: Run, music: Music, tmp_path: Path) -> None:
    path = tmp_path.resolve() / "alpha.mp3"
    shutil.copy(music.alpha, path)
    add(run, path)
    dj_set_track = SetTrackFactory(track=library_file(path).track)
    retagged = tmp_path / "retagged.mp3"
    ffmpeg("-i", path, "-c", "copy", *tags(title="Alpha (Edit)", ISRC=ALPHA_ISRC), retagged)
    retagged.replace(path)

    result = add(run, path)

    assert result.stdout.splitlines()[0].startswith("indexed 1 file(s)")
    (row,) = db.session.scalars(select(LibraryFile)).all()
    assert (row.path, row.title, row.isrc) == (str(path), "Alpha (Edit)", ALPHA_ISRC)
    # The tracklist that used the file's track still points at the file, through its ISRC.
    assert row.track is not None
    assert row.track.id == dj_set_track.track_id
    assert count(Track) == 1


def test_a_moved_file_is_found_at_its_new_path(run: Run, music: Music, tmp_path: Path) -> None:
    old = tmp_path.resolve() / "old" / "alpha.mp3"
    new = tmp_path.resolve() / "new" / "alpha.mp3"
    for folder in (old.parent, new.parent):
        folder.mkdir()
    shutil.copy(music.alpha, old)
    add(run, old.parent)
    old.replace(new)

    result = add(run, new.parent)

    assert result.exit_code == 0, result.output
    assert [row.path for row in library.files()] == [str(new)]


def test_library_files_keep_their_tags_or_their_file_names(run: Run, music: Music) -> None:
    result = add(run, music.library, music.delta)

    assert result.exit_code == 0, result.output
    described = {
        Path(row.path).name: (row.title, row.artist, row.album, row.isrc)
        for row in db.session.scalars(select(LibraryFile))
    }
    assert described == {
        "alpha.mp3": ("Alpha", "Artist A", "Tones", ALPHA_ISRC),
        "beta.flac": ("Beta", "Artist B", None, BETA_ISRC),
        "Gamma Artist - Gamma.wav": ("Gamma", "Gamma Artist", None, None),
        "delta.wav": ("delta", None, None, None),
    }
    catalogue = {
        Path(track.library_file.path).name: (track.title, track.artist, track.isrc)
        for track in db.session.scalars(select(Track))
        if track.library_file is not None
    }
    assert catalogue == {
        "alpha.mp3": ("Alpha", "Artist A", ALPHA_ISRC),
        "beta.flac": ("Beta", "Artist B", BETA_ISRC),
        "Gamma Artist - Gamma.wav": ("Gamma", "Gamma Artist", None),
        "delta.wav": ("delta", UNKNOWN_ARTIST, None),
    }
    assert count(Track) == 4


def test_a_catalogue_track_with_the_same_isrc_is_linked(run: Run, music: Music) -> None:
    known = TrackFactory(isrc=ALPHA_ISRC, title="Alpha (Original Mix)", artist="Catalogue A")

    result = add(run, music.alpha)

    assert result.exit_code == 0, result.output
    row = library_file(music.alpha)
    assert row.track is not None
    assert row.track.id == known.id
    assert db.session.get(Track, known.id).library_file_id == row.id  # type: ignore[union-attr]
    assert count(Track) == 1
    listed = json.loads(run("library", "list", "--format", "json").stdout)
    assert listed[0]["track_id"] == known.id


def test_library_tracks_are_private_until_published(
    run: Run, music: Music, client: FlaskClient
) -> None:
    known = TrackFactory(isrc=BETA_ISRC, title="Beta (Original Mix)", artist="Catalogue B")
    add(run, music.alpha, music.beta)
    alpha_track = library_file(music.alpha).track
    assert alpha_track is not None

    hidden = [item["title"] for item in client.get("/api/v1/tracks").json["items"]]
    detail = client.get(f"/api/v1/tracks/{alpha_track.id}")
    published = run("library", "publish", music.alpha)
    shown = [item["title"] for item in client.get("/api/v1/tracks").json["items"]]

    # A track the catalogue knew before stays public; one only the library knows does not.
    assert hidden == ["Beta (Original Mix)"]
    assert known.is_public
    assert detail.status_code == 404
    assert published.stdout == (
        f"published #{alpha_track.id} Artist A - Alpha\n1 track(s) published\n"
    )
    assert sorted(shown) == ["Alpha", "Beta (Original Mix)"]


def test_identify_reads_a_mix_whose_name_looks_like_a_protocol(
    run: Run, music: Music, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(run, music.alpha, music.beta)
    shutil.copy(music.mix, tmp_path / "set:1.mp3")
    monkeypatch.chdir(tmp_path)

    found = identify(run, Path("set:1.mp3"))

    assert [entry["title"] for entry in played(found)] == ["Alpha", "Beta"]


def test_an_interrupted_add_keeps_what_was_done_and_resumes(
    run: Run, music: Music, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_job = library._fingerprint_job
    calls = 0

    def interrupted_on_second_file(path: Path) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return real_job(path)

    monkeypatch.setattr(library, "_fingerprint_job", interrupted_on_second_file)

    stopped = add(run, music.library)

    assert stopped.exit_code == 1
    assert "interrupted: the files indexed so far are kept" in stopped.stderr
    assert stopped.stdout.splitlines()[0].startswith("indexed 1 file(s)")
    assert [row.path for row in db.session.scalars(select(LibraryFile))] == [str(music.alpha)]
    assert segment_folders(index_dir) == segment_rows()
    # A segment written by a run killed before its commit.
    orphan = index_dir / "segments" / "seg-killed-before-commit"
    orphan.mkdir()
    (orphan / "keys.npy").write_bytes(b"partial")

    resumed = add(run, music.library)

    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.splitlines()[0].startswith("indexed 2 file(s)")
    assert "1 already indexed" in resumed.stdout
    assert count(LibraryFile) == 3
    assert segment_folders(index_dir) == segment_rows()
    assert len(segment_rows()) == 2
    titles = [entry["title"] for entry in played(identify(run, music.mix))]
    assert titles == ["Alpha", "Beta"]


def test_a_failed_commit_is_one_line_and_the_next_add_sweeps_its_segment(
    run: Run, music: Music, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_commit = Session.commit
    failures = [OperationalError("COMMIT", {}, Exception("server closed the connection"))]

    def commit_failing_once(self: Session) -> None:
        if failures and stores_a_segment(self):
            raise failures.pop()
        real_commit(self)

    monkeypatch.setattr(Session, "commit", commit_failing_once)

    crashed = add(run, music.alpha, music.beta)

    fails_cleanly(
        crashed,
        "database error (server closed the connection): the 0 file(s) stored before it are"
        " kept; run the same command again to index the rest",
    )
    assert count(LibraryFile) == 0
    assert count(Track) == 0
    assert segment_rows() == set()
    # Never deleted after a failed commit: the commit may have reached the database.
    assert len(segment_folders(index_dir)) == 1
    again = add(run, music.alpha, music.beta)
    assert again.stdout.splitlines()[0].startswith("indexed 2 file(s)")
    assert segment_folders(index_dir) == segment_rows()


def test_a_commit_that_lands_then_fails_keeps_the_index_usable(
    run: Run, music: Music, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit reaches the database, then the connection drops before it says so."""
    add(run, music.alpha)
    real_commit = Session.commit
    failures = [OperationalError("COMMIT", {}, Exception("server closed the connection"))]

    def commit_then_fail(self: Session) -> None:
        landing = stores_a_segment(self)
        real_commit(self)
        if failures and landing:
            raise failures.pop()

    monkeypatch.setattr(Session, "commit", commit_then_fail)

    crashed = add(run, music.beta)

    monkeypatch.setattr(Session, "commit", real_commit)
    fails_cleanly(crashed, "database error (server closed the connection)")
    assert count(LibraryFile) == 2
    assert segment_folders(index_dir) == segment_rows()
    assert [entry["title"] for entry in played(identify(run, music.mix))] == ["Alpha", "Beta"]
    again = add(run, music.alpha, music.beta)
    assert again.stdout.splitlines()[0].startswith("indexed 0 file(s)")
    assert "2 already indexed" in again.stdout


def test_a_merge_whose_commit_lands_then_fails_keeps_the_index_usable(
    run: Run, music: Music, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in (music.alpha, music.beta, music.gamma):
        add(run, path)
    real_commit = Session.commit
    real_merge = SegmentStore.merge
    merged: list[str] = []

    def merge(self: SegmentStore, *args: Any) -> tuple[str, int, int]:
        written = real_merge(self, *args)
        merged.append(written[0])
        return written

    def merge_commit_then_fail(self: Session) -> None:
        real_commit(self)
        if merged and len(merged) == 1:  # the first commit after the merge was written
            merged.append("committed")
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(SegmentStore, "merge", merge)
    monkeypatch.setattr(Session, "commit", merge_commit_then_fail)

    crashed = add(run, music.delta)

    monkeypatch.setattr(Session, "commit", real_commit)
    fails_cleanly(crashed, "database error (server closed the connection)")
    assert segment_rows() == {merged[0]}
    assert len(segment_folders(index_dir)) == 5  # the four merged away are left to the sweep
    assert [entry["title"] for entry in played(identify(run, music.mix))] == [
        "Alpha",
        "delta",
        "Beta",
    ]
    add(run, music.library)  # the next writer sweeps the merged-away folders
    assert segment_folders(index_dir) == segment_rows()


def test_files_indexed_before_segments_were_recorded_are_still_found(
    run: Run, music: Music
) -> None:
    add(run, music.alpha)
    add(run, music.beta)
    db.session.execute(update(LibraryFile).values(segment=None))
    db.session.commit()

    assert [entry["title"] for entry in played(identify(run, music.mix))] == ["Alpha", "Beta"]


def test_a_lost_segment_is_skipped_and_repair_lets_add_index_it_again(
    run: Run, music: Music, index_dir: Path
) -> None:
    add(run, music.alpha)
    add(run, music.beta)
    beta_segment = library_file(music.beta).segment
    assert beta_segment is not None
    shutil.rmtree(index_dir / "segments" / beta_segment)

    damaged = identify(run, music.mix)
    skipped = add(run, music.beta)
    repaired = run("library", "repair")
    readded = add(run, music.beta)

    assert [entry["title"] for entry in played(damaged)] == ["Alpha"]
    assert f"warning: index segment {beta_segment} is missing" in damaged.stderr
    assert "1 already indexed" in skipped.stdout
    assert repaired.exit_code == 0, repaired.output
    assert repaired.stdout == (
        f"dropped missing index segment {beta_segment}\nforgot {music.beta}\n"
        "1 file(s) to index again: run `flask library add` on your music\n"
    )
    assert readded.stdout.splitlines()[0].startswith("indexed 1 file(s)")
    restored = identify(run, music.mix)
    assert [entry["title"] for entry in played(restored)] == ["Alpha", "Beta"]
    assert "warning" not in restored.stderr
    assert segment_folders(index_dir) == segment_rows()


def test_a_removed_file_never_answers_for_a_file_that_gets_its_id(
    run: Run, music: Music, index_dir: Path
) -> None:
    add(run, music.gamma)
    add(run, music.alpha)
    alpha_id = library_file(music.alpha).id
    run("library", "remove", music.alpha)
    # Ids are never given again (tests/test_ids.py), but a SQLite database from before
    # AUTOINCREMENT could give alpha's: make it the next id, on either database.
    if db.engine.dialect.name == "sqlite":
        statement = "UPDATE sqlite_sequence SET seq = :id - 1 WHERE name = 'library_files'"
    else:
        statement = "SELECT setval(pg_get_serial_sequence('library_files', 'id'), :id - 1)"
    db.session.execute(text(statement), {"id": alpha_id})

    add(run, music.delta)

    delta = library_file(music.delta)
    found = played(identify(run, music.mix))
    # The mix plays alpha from 0 s, delta from 28 s: alpha's old rows must not say "delta".
    assert [entry["title"] for entry in found] == ["delta"]
    assert found[0]["start"] > 20
    assert delta.id == alpha_id


@pytest.mark.postgres
@pytest.mark.committing
def test_indexing_that_outlasts_the_idle_transaction_timeout_completes(
    backends: Backends, music: Music, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ends a session idle in a transaction (60 s in production, 1 s here)."""
    slow = create_app(
        base_config(
            backends,
            tmp_path,
            FINGERPRINT_DIR=str(tmp_path / "index"),
            SQLALCHEMY_ENGINE_OPTIONS={
                "connect_args": {"options": "-c idle_in_transaction_session_timeout=1000"}
            },
        )
    )
    real_fingerprint = engine.fingerprint_file

    def fingerprint_outlasting_the_timeout(path: Path, digest: str) -> Any:
        result = real_fingerprint(path, digest)
        time.sleep(1.5)  # a long track on a busy machine: longer than the timeout
        return result

    monkeypatch.setattr(engine, "fingerprint_file", fingerprint_outlasting_the_timeout)
    runner = slow.test_cli_runner()

    # The commands run in the current app context: this app's, not the session app's.
    with slow.app_context():
        added = runner.invoke(args=["library", "add", "--jobs", "1", str(music.library)])
        found = runner.invoke(args=["identify", str(music.mix), "--format", "json"])
        timeout = db.session.scalar(text("SHOW idle_in_transaction_session_timeout"))
        db.session.remove()
        db.engine.dispose()

    assert timeout == "1s"
    assert added.exit_code == 0, added.output
    assert added.stdout.splitlines()[0].startswith("indexed 3 file(s)")
    assert [entry["title"] for entry in played(found)] == ["Alpha", "Beta"]


# Listing, statistics, removing.


def test_list_and_stats_describe_the_library(run: Run, music: Music, index_dir: Path) -> None:
    add(run, music.library)
    rows = {Path(row.path).name: row for row in db.session.scalars(select(LibraryFile))}

    text = run("library", "list")
    listed = json.loads(run("library", "list", "--format", "json").stdout)
    stats = run("library", "stats")

    alpha, beta, gamma = rows["alpha.mp3"], rows["beta.flac"], rows["Gamma Artist - Gamma.wav"]
    assert text.stdout.splitlines() == [
        f"{alpha.id:>6}  0:00:40  Artist A - Alpha  [{alpha.path}]",
        f"{beta.id:>6}  0:00:40  Artist B - Beta  [{beta.path}]",
        f"{gamma.id:>6}  0:00:30  Gamma Artist - Gamma  [{gamma.path}]",
    ]
    assert listed[0] == {
        "id": alpha.id,
        "path": alpha.path,
        "title": "Alpha",
        "artist": "Artist A",
        "album": "Tones",
        "isrc": ALPHA_ISRC,
        "duration": pytest.approx(40.0, abs=0.1),
        "track_id": alpha.track.id,  # type: ignore[union-attr]
    }
    assert [item["path"] for item in listed] == [alpha.path, beta.path, gamma.path]
    fingerprints = sum(row.fingerprint_count for row in rows.values())
    on_disk = sum(path.stat().st_size for path in index_dir.rglob("*.npy"))
    assert stats.stdout.splitlines() == [
        "files: 3",
        "audio: 0.03 h",
        f"fingerprints: {fingerprints} in 1 segment(s)",
        f"index size: {on_disk / 1e6:.1f} MB",
    ]


def test_list_and_stats_of_an_empty_library(run: Run) -> None:
    listed = run("library", "list")
    stats = run("library", "stats")

    assert listed.exit_code == 0
    assert listed.stdout == ""
    assert "the library is empty: add music with `flask library add PATH...`" in listed.stderr
    assert stats.stdout.splitlines() == [
        "files: 0",
        "audio: 0.00 h",
        "fingerprints: 0 in 0 segment(s)",
        "index size: 0.0 MB",
    ]


def test_remove_by_id_path_and_folder(
    run: Run, music: Music, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(run, music.library, music.delta)
    delta_id = library_file(music.delta).id
    monkeypatch.chdir(music.library)

    by_id = run("library", "remove", "--id", str(delta_id))
    by_relative_path = run("library", "remove", "alpha.mp3")
    by_folder = run("library", "remove", music.library / "sub")

    assert by_id.stdout == f"removed {music.delta}\n1 file(s) removed\n"
    assert by_relative_path.stdout == f"removed {music.alpha}\n1 file(s) removed\n"
    assert by_folder.stdout == (f"removed {music.beta}\nremoved {music.gamma}\n2 file(s) removed\n")
    assert count(LibraryFile) == 0
    assert count(Track) == 0
    assert run("library", "list").stdout == ""


def test_removing_a_folder_spares_folders_that_share_its_prefix(run: Run) -> None:
    for path in ("/music/live/a.flac", "/music/Live/b.flac", "/music/lively/c.flac"):
        LibraryFileFactory(path=path)

    result = run("library", "remove", "/music/live")

    assert result.stdout == "removed /music/live/a.flac\n1 file(s) removed\n"
    assert [row.path for row in library.files()] == ["/music/Live/b.flac", "/music/lively/c.flac"]


def test_remove_names_the_targets_it_does_not_know(run: Run) -> None:
    LibraryFileFactory(path="/music/kept.flac")

    result = run("library", "remove", "999999", "/music/nowhere", "--id", "999999")

    fails_cleanly(result, "not in the library: 999999, /music/nowhere, --id 999999")
    assert "0 file(s) removed" in result.stdout
    assert [row.path for row in library.files()] == ["/music/kept.flac"]


def test_a_folder_named_like_an_id_is_a_folder(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbered = LibraryFileFactory(path="/music/elsewhere/numbered.flac")
    year = tmp_path / str(numbered.id)
    year.mkdir()
    LibraryFileFactory(path=str(year / "a.flac"))
    LibraryFileFactory(path=str(tmp_path / "²" / "b.flac"))
    monkeypatch.chdir(tmp_path)

    by_folder = run("library", "remove", str(numbered.id))
    superscript = run("library", "remove", "²")
    unknown = run("library", "remove", "³")
    by_id = run("library", "remove", "--id", str(numbered.id))

    assert by_folder.stdout == f"removed {year / 'a.flac'}\n1 file(s) removed\n"
    assert superscript.stdout == f"removed {tmp_path / '²' / 'b.flac'}\n1 file(s) removed\n"
    fails_cleanly(unknown, "not in the library: ³")
    assert by_id.stdout == "removed /music/elsewhere/numbered.flac\n1 file(s) removed\n"
    assert library.files() == []


def test_a_database_error_while_removing_is_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    LibraryFileFactory(path="/music/kept.flac")

    def commit_failing(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("the database system is shutting down"))

    monkeypatch.setattr(Session, "commit", commit_failing)

    result = run("library", "remove", "/music/kept.flac")

    fails_cleanly(result, "database error: the database system is shutting down")


def test_remove_keeps_a_track_that_a_tracklist_uses(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)
    alpha_track = library_file(music.alpha).track
    beta_track = library_file(music.beta).track
    assert alpha_track is not None
    assert beta_track is not None
    alpha_track_id, beta_track_id = alpha_track.id, beta_track.id
    SetTrackFactory(track=alpha_track)

    result = run("library", "remove", music.alpha, music.beta)

    assert result.exit_code == 0, result.output
    kept = db.session.get(Track, alpha_track_id)
    assert kept is not None
    assert (kept.title, kept.library_file_id) == ("Alpha", None)
    assert db.session.get(Track, beta_track_id) is None


def test_remove_keeps_a_catalogue_track_linked_by_isrc(run: Run, music: Music) -> None:
    known = TrackFactory(isrc=ALPHA_ISRC, title="Alpha (Original Mix)", artist="Catalogue A")
    known_id = known.id
    add(run, music.alpha)

    run("library", "remove", music.alpha)

    kept = db.session.get(Track, known_id)
    assert kept is not None
    assert (kept.isrc, kept.library_file_id) == (ALPHA_ISRC, None)


def test_a_removed_file_is_no_longer_identified(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)
    before = [entry["title"] for entry in played(identify(run, music.mix))]

    run("library", "remove", music.alpha)

    after = [entry["title"] for entry in played(identify(run, music.mix))]
    assert before == ["Alpha", "Beta"]
    assert after == ["Beta"]


def test_every_fourth_segment_is_merged_without_removed_files(
    run: Run, music: Music, index_dir: Path
) -> None:
    add(run, music.alpha)
    add(run, music.beta)
    alpha_rows = db.session.scalar(
        select(LibraryFile.fingerprint_count).where(LibraryFile.path == str(music.alpha))
    )
    run("library", "remove", music.alpha)
    add(run, music.gamma)
    assert len(segment_rows()) == 3
    assert (
        run("library", "stats")
        .stdout.splitlines()[2]
        .endswith(
            f"in 3 segment(s), plus {alpha_rows} of removed files until their segment is merged"
        )
    )

    add(run, music.delta)

    live = sum(row.fingerprint_count for row in db.session.scalars(select(LibraryFile)))
    assert run("library", "stats").stdout.splitlines()[2] == (
        f"fingerprints: {live} in 1 segment(s)"
    )
    assert segment_folders(index_dir) == segment_rows()
    # The unknown track of the mix is in the library now; the removed one is gone for good.
    assert [entry["title"] for entry in played(identify(run, music.mix))] == ["delta", "Beta"]


# Identifying mixes.


def test_identify_json_lists_the_mix_tracks_in_order(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)
    alpha, beta = library_file(music.alpha), library_file(music.beta)
    truth_alpha, _, truth_beta = music.truth

    result = identify(run, music.mix)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"duration", "tracks"}
    assert document["duration"] == pytest.approx(truth_beta.end, abs=0.2)
    assert [set(entry) for entry in document["tracks"]] == [ENTRY_KEYS, ENTRY_KEYS]
    first, second = document["tracks"]
    assert (first["title"], first["artist"], first["path"], first["track_id"]) == (
        "Alpha",
        "Artist A",
        alpha.path,
        alpha.track.id,  # type: ignore[union-attr]
    )
    assert (second["title"], second["artist"], second["path"], second["track_id"]) == (
        "Beta",
        "Artist B",
        beta.path,
        beta.track.id,  # type: ignore[union-attr]
    )
    for entry, truth in ((first, truth_alpha), (second, truth_beta)):
        assert truth.start - 1 <= entry["start"] < entry["end"] <= truth.end + 1
        # Found for at least half of the time it is on air.
        assert entry["end"] - entry["start"] >= (truth.end - truth.start) / 2
        assert 0 < entry["confidence"] <= 1
        assert entry["speed"] == pytest.approx(truth.speed, abs=0.01)
        assert entry["pitch"] == pytest.approx(1.0, abs=0.01)


def test_identify_text_marks_the_unknown_track_as_id(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)
    truth_alpha, _, truth_beta = music.truth

    result = run("identify", music.mix)

    assert result.exit_code == 0, result.output
    lines = [re.fullmatch(r"(\d\d):(\d\d) (.+)", line) for line in result.stdout.splitlines()]
    assert all(lines), result.stdout
    names = [line[3] for line in lines if line]
    seconds = [int(line[1]) * 60 + int(line[2]) for line in lines if line]
    assert names == ["Artist A - Alpha", "ID - ID", "Artist B - Beta"]
    assert truth_alpha.start <= seconds[0] <= truth_alpha.start + 5
    assert truth_alpha.end - 10 <= seconds[1] <= truth_alpha.end
    assert truth_beta.start - 1 <= seconds[2] <= truth_beta.start + 10


def test_identify_writes_a_cue_sheet(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)

    result = run("identify", music.mix, "--format", "cue")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == ['REM COMMENT "Set2Tracks"', 'TITLE "mix"', 'FILE "mix.mp3" MP3']
    assert [line.strip() for line in lines[3:] if not line.strip().startswith("INDEX")] == [
        "TRACK 01 AUDIO",
        'TITLE "Alpha"',
        'PERFORMER "Artist A"',
        "TRACK 02 AUDIO",
        'TITLE "ID"',
        'PERFORMER "ID"',
        "TRACK 03 AUDIO",
        'TITLE "Beta"',
        'PERFORMER "Artist B"',
    ]
    indexes = [line.strip() for line in lines if line.strip().startswith("INDEX")]
    assert len(indexes) == 3
    assert all(re.fullmatch(r"INDEX 01 \d\d:[0-5]\d:([0-6]\d|7[0-4])", line) for line in indexes)
    assert indexes == sorted(indexes)


def test_min_confidence_leaves_out_doubtful_entries(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)
    everything = played(identify(run, music.mix, "--min-confidence", "0"))
    best = max(entry["confidence"] for entry in everything)

    confident = played(identify(run, music.mix, "--min-confidence", str(best)))
    nothing = identify(run, music.mix, "--min-confidence", "1.0")

    assert [entry["title"] for entry in everything] == ["Alpha", "Beta"]
    assert [entry["title"] for entry in confident] == [
        entry["title"] for entry in everything if entry["confidence"] >= best
    ]
    assert len(confident) < len(everything)
    assert played(nothing) == []
    assert "no track of the library was found in this mix" in nothing.stderr


def test_a_mix_of_unknown_music_finds_nothing(run: Run, music: Music) -> None:
    add(run, music.alpha, music.beta)

    result = identify(run, music.delta)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "duration": pytest.approx(SECONDS["delta"], abs=0.1),
        "tracks": [],
    }
    assert "no track of the library was found in this mix" in result.stderr


def test_identify_with_an_empty_library_says_what_to_do(run: Run, music: Music) -> None:
    fails_cleanly(
        run("identify", music.mix),
        "the library is empty: index your music first with `flask library add PATH...`",
    )


def test_identify_refuses_a_missing_or_non_audio_mix(
    run: Run, music: Music, tmp_path: Path
) -> None:
    add(run, music.gamma)
    missing = tmp_path / "no-such-mix.mp3"

    fails_cleanly(run("identify", missing), f"{missing}: no such file")
    fails_cleanly(run("identify", music.broken), f"{music.broken}: not audio ffmpeg can decode")


# Tracklist formats.


def heard(start: float, end: float, title: str, artist: str | None = "Artist") -> Play:
    return Play(start, end, TrackRef(title, artist, library_file_id=1))


def test_text_shows_leading_middle_and_trailing_unknown_stretches() -> None:
    plays = [heard(100.0, 150.0, "Second", None), heard(25.0, 60.0, "First")]

    text = tracklist_formats.to_text(plays, 200.0)

    assert text.splitlines() == [
        "00:00 ID - ID",
        "00:25 Artist - First",
        "01:00 ID - ID",
        "01:40 ID - Second",
        "02:30 ID - ID",
    ]
    assert text.endswith("\n")


@pytest.mark.parametrize(("gap", "unknown"), [(19.9, False), (20.0, True)])
def test_only_gaps_of_twenty_seconds_are_unknown(gap: float, unknown: bool) -> None:
    plays = [heard(gap, 60.0, "First"), heard(60.0 + gap, 120.0, "Second")]

    lines = tracklist_formats.lines(plays, 120.0 + gap)

    titles = [line.title for line in lines]
    assert titles == (["ID", "First", "ID", "Second", "ID"] if unknown else ["First", "Second"])


def test_overlapping_entries_leave_no_gap() -> None:
    # The second play sits inside the first (a long blend): it must not reopen a gap.
    plays = [heard(0.0, 100.0, "Long"), heard(50.0, 80.0, "Blended"), heard(110.0, 200.0, "Next")]

    lines = tracklist_formats.lines(plays, 200.0)

    assert [(line.start, line.title) for line in lines] == [
        (0.0, "Long"),
        (50.0, "Blended"),
        (110.0, "Next"),
    ]


def test_text_uses_hours_for_mixes_of_an_hour_or_more() -> None:
    plays = [heard(0.0, 3000.0, "Opener"), heard(2990.0, 3725.9, "Closer")]

    assert tracklist_formats.to_text(plays, 3725.9).splitlines() == [
        "0:00:00 Artist - Opener",
        "0:49:50 Artist - Closer",
    ]
    assert tracklist_formats.to_text(plays, 3599.0).splitlines()[1] == "49:50 Artist - Closer"
    assert tracklist_formats.timestamp(3725.9, hours=True) == "1:02:05"


def test_cue_sheet_counts_75_frames_a_second_and_drops_quotes() -> None:
    plays = [
        heard(0.4, 61.0, 'Say "Hello"\nAgain', 'The "Band"'),
        heard(61.2, 3725.04, "Long  Track"),
        heard(3725.04, 3730.0, "Last"),
    ]

    cue = tracklist_formats.to_cue(plays, 3730.0, Path('/sets/"Live" set.mp3'), 'Live "at" Club')

    assert cue == (
        'REM COMMENT "Set2Tracks"\n'
        "TITLE \"Live 'at' Club\"\n"
        "FILE \"'Live' set.mp3\" MP3\n"
        "  TRACK 01 AUDIO\n"
        "    TITLE \"Say 'Hello' Again\"\n"
        "    PERFORMER \"The 'Band'\"\n"
        "    INDEX 01 00:00:30\n"
        "  TRACK 02 AUDIO\n"
        '    TITLE "Long Track"\n'
        '    PERFORMER "Artist"\n'
        "    INDEX 01 01:01:15\n"
        "  TRACK 03 AUDIO\n"
        '    TITLE "Last"\n'
        '    PERFORMER "Artist"\n'
        "    INDEX 01 62:05:03\n"
    )


@pytest.mark.parametrize(
    ("name", "kind"), [("set.mp3", "MP3"), ("set.AIFF", "AIFF"), ("set.flac", "WAVE")]
)
def test_cue_file_type_follows_the_audio_file(name: str, kind: str) -> None:
    cue = tracklist_formats.to_cue([], 10.0, Path(name), "Set")

    assert cue.splitlines()[2] == f'FILE "{name}" {kind}'


def test_a_long_step_never_commits_a_half_built_library_file(app: Flask) -> None:
    # A row left pending before fingerprinting would be committed without its segment:
    # the file would then read as "already indexed" and never be matched.
    db.session.add(LibraryFile(path="/music/half.mp3", content_hash="0" * 64, size_bytes=1))

    with pytest.raises(RuntimeError, match="nothing written"):
        library._end_transaction()

    db.session.rollback()
    assert db.session.scalar(select(func.count(LibraryFile.id))) == 0
