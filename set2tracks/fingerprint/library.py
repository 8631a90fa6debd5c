"""The own library in the database: files, their catalogue tracks, the committed segments.

Adding files: worker processes decode and fingerprint (``engine.fingerprint_file``); this
process writes their fingerprints as a segment and commits, in one transaction, the
segment's row with the library files and their catalogue tracks. A run stopped at any
point leaves every committed batch whole and nothing else: the next run sweeps uncommitted
segment folders and skips the files already indexed (same content hash).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flask import current_app
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from set2tracks.database import utcnow
from set2tracks.extensions import db
from set2tracks.fingerprint import engine, scan
from set2tracks.fingerprint.audio import AudioError, Samples, decode
from set2tracks.fingerprint.index import (
    MAX_FILE_ID,
    IndexReader,
    IndexStoreError,
    PeakTable,
    Segment,
    SegmentStore,
    live_mask,
    pack,
    plan_merges,
)
from set2tracks.fingerprint.models import FingerprintSegment, LibraryFile
from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.sets.models import FoundBy
from set2tracks.tracks.models import Track
from set2tracks.tracks.services import (
    forget_library_file,
    link_library_track,
    publish_library_tracks,
)

logger = logging.getLogger(__name__)

# A segment per ~4 M fingerprints (about 12 hours of audio): an interrupted run loses at
# most that much work, and small libraries still get one segment per run.
BATCH_ROWS = 4_000_000


class LibraryError(Exception):
    """The library cannot do what was asked; the message tells the user what to do."""


@dataclass
class AddReport:
    indexed: list[LibraryFile] = field(default_factory=list)
    audio_seconds: float = 0.0
    already_indexed: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    elapsed: float = 0.0
    interrupted: bool = False


@dataclass(frozen=True)
class Stats:
    files: int
    seconds: float
    segments: int
    rows: int  # fingerprints of the files in the library
    stale_rows: int  # of removed files, still on disk until their segment is merged
    index_bytes: int


def segment_store() -> SegmentStore:
    return SegmentStore(Path(current_app.config["FINGERPRINT_DIR"]))


# Adding files.

_known_hashes: frozenset[str] = frozenset()


def _init_worker(known: frozenset[str]) -> None:
    global _known_hashes  # per-process state of a pool worker
    _known_hashes = known


@dataclass(frozen=True)
class Known:
    """The audio of a file already in the library (``content_hash`` says which)."""

    content_hash: str


def _fingerprint_job(path: Path) -> engine.FileFingerprints | Known | str:
    """In a worker: the file's fingerprints, ``Known`` when indexed already, or why it failed."""
    try:
        digest = scan.content_hash(path)
    except OSError as error:
        return f"cannot read the file ({error.strerror or error})"
    if digest in _known_hashes:
        return Known(digest)
    try:
        return engine.fingerprint_file(path, digest)
    except engine.Unusable as error:
        return str(error)


def total_bytes(found: scan.ScanResult) -> int:
    return sum(_size(path) for path in found.files)


def add(
    found: scan.ScanResult,
    *,
    jobs: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> AddReport:
    """Index the scanned files; ``on_progress`` gets the bytes of each file done.

    A database error raises ``LibraryError`` saying what was kept.
    """
    started = time.monotonic()
    report = AddReport()
    report.problems.extend((str(path), why) for path, why in found.problems)
    store = segment_store()
    with store.writer_lock():
        try:
            _add(store, found, jobs, on_progress, report)
        except SQLAlchemyError as error:
            db.session.rollback()
            raise LibraryError(
                f"database error ({database_message(error)}):"
                f" the {len(report.indexed)} file(s) stored before it are kept;"
                " run the same command again to index the rest"
            ) from error
    report.elapsed = time.monotonic() - started
    return report


def _add(
    store: SegmentStore,
    found: scan.ScanResult,
    jobs: int | None,
    on_progress: Callable[[int], None] | None,
    report: AddReport,
) -> None:
    _sweep(store)
    known = frozenset(db.session.scalars(select(LibraryFile.content_hash)))
    _end_transaction()
    sizes = {path: _size(path) for path in found.files}
    batch: list[engine.FileFingerprints] = []
    seen: dict[str, Path] = {}
    try:
        for path, outcome in _fingerprint_all(found.files, known, jobs):
            if on_progress is not None:
                on_progress(sizes[path])
            if isinstance(outcome, Known):
                _follow_move(outcome.content_hash, path)
                report.already_indexed += 1
            elif isinstance(outcome, str):
                report.problems.append((str(path), outcome))
            elif outcome.content_hash in seen:
                report.problems.append(
                    (str(path), f"same audio file as {seen[outcome.content_hash]}, indexed once")
                )
            else:
                seen[outcome.content_hash] = path
                batch.append(outcome)
                if sum(len(item.quads) for item in batch) >= BATCH_ROWS:
                    _commit_batch(store, batch, report)
                    batch = []
            _end_transaction()
    except KeyboardInterrupt:
        report.interrupted = True
    # Whatever was fingerprinted completely is worth keeping, even after Ctrl-C.
    if batch:
        _commit_batch(store, batch, report)
    if not report.interrupted:
        compact(store)


def _end_transaction() -> None:
    """End the session's read transaction before the next long step; refuse pending writes.

    No transaction may stay open while audio is decoded or segments are merged: PostgreSQL
    ends sessions idle in a transaction (idle_in_transaction_session_timeout, 60 s in
    production), and a library takes hours to index. Callers only read before this point
    (``_follow_move`` and ``_commit_batch`` commit their own writes), so the commit writes
    nothing; a pending object would be a half-built batch, committed without its segment.
    """
    session = db.session()
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("unsaved library changes before a long step: a bug, nothing written")
    session.commit()


def database_message(error: SQLAlchemyError) -> str:
    """The first line of the driver's message: no SQL, no parameters."""
    text = str(getattr(error, "orig", None) or type(error).__name__).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fingerprint_all(
    files: Sequence[Path], known: frozenset[str], jobs: int | None
) -> Iterator[tuple[Path, engine.FileFingerprints | Known | str]]:
    workers = max(1, jobs or os.cpu_count() or 1)
    if workers == 1 or len(files) <= 1:
        _init_worker(known)
        for path in files:
            yield path, _fingerprint_job(path)
        return
    # forkserver: workers start from a clean process, not a copy of this one with its
    # database connections.
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(known,)
    )
    pending: dict[Future[engine.FileFingerprints | Known | str], Path] = {}
    queue = iter(files)
    try:
        while True:
            # A couple of files per worker in flight: memory stays bounded however big the scan.
            while len(pending) < 2 * workers and (queued := next(queue, None)) is not None:
                pending[pool.submit(_fingerprint_job, queued)] = queued
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                path = pending.pop(future)
                try:
                    yield path, future.result()
                except Exception as error:  # a worker crash is one file's problem
                    yield path, f"could not be fingerprinted ({type(error).__name__}: {error})"
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _commit_batch(
    store: SegmentStore, batch: list[engine.FileFingerprints], report: AddReport
) -> None:
    rows: list[LibraryFile] = []
    for item in batch:
        stale = db.session.scalar(select(LibraryFile).where(LibraryFile.path == str(item.path)))
        if stale is not None:
            # The file at this path changed: the new audio replaces the old entry.
            forget_library_file(stale.id)
            db.session.flush()
        library_file = LibraryFile(
            path=str(item.path),
            content_hash=item.content_hash,
            size_bytes=item.size_bytes,
            title=item.tags.title,
            artist=item.tags.artist,
            album=item.tags.album,
            isrc=item.tags.isrc,
            duration_seconds=item.duration,
            fingerprint_count=len(item.quads),
            indexed_at=utcnow(),
        )
        link_library_track(library_file)
        db.session.add(library_file)
        rows.append(library_file)
    db.session.flush()
    if rows and max(row.id for row in rows) > MAX_FILE_ID:
        db.session.rollback()
        raise LibraryError(f"the index holds at most {MAX_FILE_ID} library files")
    packed = [pack(row.id, item.quads) for row, item in zip(rows, batch, strict=True)]
    keys = np.concatenate([k for k, _ in packed])
    payload = np.concatenate([p for _, p in packed])
    name = store.new_name()
    for row in rows:
        row.segment = name
    peaks = PeakTable.of([(row.id, item.peaks) for row, item in zip(rows, batch, strict=True)])
    size = store.write(name, keys, payload, peaks)
    db.session.add(FingerprintSegment(name=name, rows=len(keys), size_bytes=size))
    try:
        db.session.commit()
    except BaseException:
        # The commit may have reached the database before the error (a lost connection, a
        # signal): deleting the folder could break a committed segment. The next writer's
        # sweep deletes it if, and only if, no committed row names it.
        db.session.rollback()
        raise
    report.indexed.extend(rows)
    report.audio_seconds += sum(item.duration for item in batch)


def _follow_move(content_hash: str, path: Path) -> None:
    """A known file found at a new path while its old path is gone: it was moved."""
    row = db.session.scalar(select(LibraryFile).where(LibraryFile.content_hash == content_hash))
    if row is None or row.path == str(path) or Path(row.path).exists():
        return
    if db.session.scalar(select(exists().where(LibraryFile.path == str(path)))):
        return  # another file's old entry holds that path: the next add sorts it out
    row.path = str(path)
    db.session.commit()


# Maintenance: merging segments, sweeping leftovers.


def _sweep(store: SegmentStore) -> None:
    store.sweep(set(db.session.scalars(select(FingerprintSegment.name))))


def compact(store: SegmentStore) -> int:
    """Merge segments of similar size until no tier holds four; return merges done.

    Merging also drops the fingerprints of removed files.
    """
    merges = 0
    while True:
        segments = {row.name: row.rows for row in db.session.scalars(select(FingerprintSegment))}
        groups = plan_merges(segments)
        if not groups:
            _end_transaction()
            return merges
        for names in groups:
            opened = [store.open(name) for name in names]
            live = _live_ids(opened)
            _end_transaction()  # a merge can take minutes
            name, rows, size = store.merge(opened, [live_mask(live[n]) for n in names])
            db.session.execute(delete(FingerprintSegment).where(FingerprintSegment.name.in_(names)))
            db.session.add(FingerprintSegment(name=name, rows=rows, size_bytes=size))
            db.session.execute(
                update(LibraryFile).where(LibraryFile.segment.in_(names)).values(segment=name)
            )
            legacy = db.session.scalar(select(exists().where(LibraryFile.segment.is_(None))))
            if legacy:
                db.session.execute(
                    update(LibraryFile)
                    .where(
                        LibraryFile.segment.is_(None),
                        LibraryFile.id.in_([file_id for n in names for file_id in live[n]]),
                    )
                    .values(segment=name)
                )
            try:
                db.session.commit()
            except BaseException:
                # Outcome unknown: leave every folder; the sweep keeps the ones rows name.
                db.session.rollback()
                raise
            store.delete(names)
            merges += 1


def _live_ids(segments: Sequence[Segment]) -> dict[str, list[int]]:
    """For each segment, the ids of the library files whose fingerprints it holds."""
    owners = db.session.execute(select(LibraryFile.id, LibraryFile.segment)).all()
    live: dict[str, list[int]] = {segment.name: [] for segment in segments}
    legacy = [file_id for file_id, name in owners if name is None]
    for file_id, name in owners:
        if name in live:
            live[name].append(file_id)
    if legacy:
        # Indexed before the segment was recorded: live wherever a segment lists it.
        wanted = np.array(legacy, np.int64)
        for segment in segments:
            listed = wanted[np.isin(wanted, np.asarray(segment.peaks.files))]
            live[segment.name].extend(int(file_id) for file_id in listed)
    return live


# Reading.


@dataclass(frozen=True)
class OpenIndex:
    reader: IndexReader
    missing: list[str]  # committed segments whose folder is missing or damaged


def open_reader() -> OpenIndex:
    """The index as committed now; raises ``LibraryError`` when there is nothing to match.

    A committed segment that cannot be read is skipped (and named in ``missing``): the rest
    of the library still answers.
    """
    store = segment_store()
    for attempt in range(3):
        names = list(db.session.scalars(select(FingerprintSegment.name)))
        has_files = db.session.scalar(select(exists().where(LibraryFile.id.isnot(None))))
        if not has_files or not names:
            _end_transaction()
            raise LibraryError(
                "the library is empty: index your music first with `flask library add PATH...`"
            )
        segments, missing = _open_segments(store, names)
        if missing and attempt < 2:
            # A merge may have replaced a segment between the query and the open: read again.
            _end_transaction()
            continue
        live = _live_ids(segments)
        _end_transaction()  # matching a mix takes minutes
        for name in missing:
            logger.warning("index segment %s is missing or damaged: skipped", name)
        return OpenIndex(IndexReader(segments, live), missing)
    raise AssertionError("unreachable")


def _open_segments(store: SegmentStore, names: Sequence[str]) -> tuple[list[Segment], list[str]]:
    segments: list[Segment] = []
    missing: list[str] = []
    for name in names:
        try:
            segments.append(store.open(name))
        except IndexStoreError:
            missing.append(name)
    return segments, missing


@dataclass(frozen=True)
class Repaired:
    forgotten: list[str]  # paths of the files to index again
    missing_segments: list[str]


def repair() -> Repaired:
    """Forget the files whose fingerprints are in no readable segment, so ``add`` redoes them."""
    store = segment_store()
    with store.writer_lock():
        _sweep(store)
        names = list(db.session.scalars(select(FingerprintSegment.name)))
        segments, missing = _open_segments(store, names)
        live = {file_id for ids in _live_ids(segments).values() for file_id in ids}
        lost = [row for row in db.session.scalars(select(LibraryFile)) if row.id not in live]
        forgotten = [row.path for row in lost]
        for row in lost:
            forget_library_file(row.id)
        if missing:
            db.session.execute(
                delete(FingerprintSegment).where(FingerprintSegment.name.in_(missing))
            )
        db.session.commit()
        store.delete(missing)
    return Repaired(sorted(forgotten), missing)


def files(prefix: str | None = None) -> list[LibraryFile]:
    query = select(LibraryFile).order_by(LibraryFile.path)
    if prefix is not None:
        # Not LIKE: SQLite's LIKE ignores case, and /music/Live is not under /music/live.
        query = query.where(func.substr(LibraryFile.path, 1, len(prefix)) == prefix)
    return list(db.session.scalars(query))


def find(targets: Sequence[str], ids: Sequence[int] = ()) -> tuple[list[LibraryFile], list[str]]:
    """Library files by path, folder or id: (found, targets matching nothing).

    A target is always a path (a folder named 2019 is not file #2019): ids come in ``ids``.
    """
    found: dict[int, LibraryFile] = {}
    unmatched: list[str] = []
    for target in targets:
        path = str(Path(target).expanduser().resolve())
        exact = db.session.scalar(select(LibraryFile).where(LibraryFile.path == path))
        matched = [exact] if exact is not None else files(path.rstrip("/") + "/")
        if not matched:
            unmatched.append(target)
        found.update((row.id, row) for row in matched)
    for file_id in ids:
        row = db.session.get(LibraryFile, file_id)
        if row is None:
            unmatched.append(f"--id {file_id}")
        else:
            found[row.id] = row
    return list(found.values()), unmatched


def remove(targets: Sequence[str], ids: Sequence[int] = ()) -> tuple[list[LibraryFile], list[str]]:
    """Forget library files by path, folder or id; return (removed, targets matching nothing)."""
    removed, unmatched = find(targets, ids)
    for row in removed:
        forget_library_file(row.id)
    db.session.commit()
    return removed, unmatched


def publish(targets: Sequence[str], ids: Sequence[int] = ()) -> tuple[list[Track], list[str]]:
    """Make the catalogue tracks of library files public; return (tracks, unmatched)."""
    found, unmatched = find(targets, ids)
    return publish_library_tracks([row.id for row in found]), unmatched


def stats() -> Stats:
    count, seconds, live = db.session.execute(
        select(
            func.count(LibraryFile.id),
            func.coalesce(func.sum(LibraryFile.duration_seconds), 0),
            func.coalesce(func.sum(LibraryFile.fingerprint_count), 0),
        )
    ).one()
    segments, rows = db.session.execute(
        select(
            func.count(FingerprintSegment.id), func.coalesce(func.sum(FingerprintSegment.rows), 0)
        )
    ).one()
    return Stats(
        files=int(count),
        seconds=float(seconds or 0.0),
        segments=int(segments),
        rows=int(live),
        stale_rows=max(int(rows) - int(live), 0),
        index_bytes=segment_store().size_on_disk(),
    )


# Identifying.

# Plays the engine is less sure of are left out unless a caller asks for them: below this,
# a play is more often a similar-sounding track than the one indexed (``flask identify``).
MIN_CONFIDENCE = 0.1


@dataclass(frozen=True)
class IdentifiedFile:
    """The library file behind a play: where it is, and the catalogue track it stands for."""

    path: str
    track_id: int | None


@dataclass(frozen=True)
class Identified:
    duration: float
    plays: list[Play]  # in mix order; each ref's library_file_id is a key of ``files``
    files: dict[int, IdentifiedFile]
    elapsed: float
    missing_segments: list[str] = field(default_factory=list)


def identify(mix: Path, min_confidence: float = 0.0) -> Identified:
    """The tracklist of the mix file against the library."""
    if not mix.is_file():
        raise LibraryError(f"{mix}: no such file")
    try:
        return identify_stream(decode(mix), min_confidence=min_confidence)
    except AudioError as error:
        raise LibraryError(f"{mix}: not audio ffmpeg can decode ({error})") from error


def identify_stream(
    blocks: Iterable[Samples],
    *,
    min_confidence: float = 0.0,
    scratch_dir: Path | None = None,
) -> Identified:
    """The plays of library files in a stream of mono samples at the engine's rate.

    ``scratch_dir`` takes the engine's temporary spectrogram (the job's folder in the
    pipeline). Raises ``LibraryError`` when the library is empty.
    """
    started = time.monotonic()
    index = open_reader()
    reader = index.reader
    tracklist = engine.identify(
        reader, blocks, reference_peaks=reader.peaks, scratch_dir=scratch_dir
    )
    plays, files = as_plays(tracklist.found, min_confidence)
    return Identified(tracklist.duration, plays, files, time.monotonic() - started, index.missing)


def as_plays(
    found: Sequence[engine.Found], min_confidence: float = 0.0
) -> tuple[list[Play], dict[int, IdentifiedFile]]:
    """The engine's plays as the pipeline's ``Play``, named from the catalogue, with their files.

    A play of a file removed while the mix was matched is left out, as are plays under
    ``min_confidence``.
    """
    ids = {play.file_id for play in found}
    rows = (
        {
            row.id: row
            for row in db.session.scalars(
                select(LibraryFile)
                .where(LibraryFile.id.in_(ids))
                .options(joinedload(LibraryFile.track))
            )
        }
        if ids
        else {}
    )
    plays: list[Play] = []
    files: dict[int, IdentifiedFile] = {}
    for play in found:
        row = rows.get(play.file_id)
        if row is None or play.confidence < min_confidence:
            continue
        track = row.track
        ref = TrackRef(
            title=track.title if track else (row.title or Path(row.path).stem),
            artist=track.artist if track else row.artist,
            library_file_id=row.id,
            isrc=track.isrc if track else row.isrc,
            album=track.album if track else row.album,
        )
        plays.append(
            Play(
                start=play.start,
                end=play.end,
                track=ref,
                found_by=FoundBy.LIBRARY,
                confidence=play.confidence,
                speed=play.speed,
                pitch=play.pitch,
            )
        )
        files[row.id] = IdentifiedFile(row.path, track.id if track else None)
    _end_transaction()  # the caller may go on computing for minutes
    return plays, files
