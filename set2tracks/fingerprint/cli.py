"""``flask library ...`` and ``flask identify``: the own-library workflow on the command line."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from set2tracks import tracklist_formats
from set2tracks.fingerprint import library, scan
from set2tracks.fingerprint.audio import AudioError, ffmpeg_path
from set2tracks.fingerprint.index import IndexStoreError
from set2tracks.pipeline.plays import Play

P = ParamSpec("P")

library_cli = AppGroup("library", help="Index your own music for offline recognition.")


def _fail(error: Exception) -> click.ClickException:
    if isinstance(error, SQLAlchemyError):
        return click.ClickException(f"database error: {library.database_message(error)}")
    return click.ClickException(str(error))


def _database_errors_in_one_line(command: Callable[P, None]) -> Callable[P, None]:
    """A database error ends the command with one line, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except SQLAlchemyError as error:
            raise _fail(error) from error

    return wrapper


def _duration(seconds: float) -> str:
    return tracklist_formats.timestamp(round(seconds), hours=True)


def _require_ffmpeg() -> None:
    try:
        ffmpeg_path()
    except AudioError as error:
        raise _fail(error) from error


@library_cli.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--jobs", type=click.IntRange(1, 64), help="Worker processes (default: one per core)."
)
@with_appcontext
def add_command(paths: tuple[Path, ...], jobs: int | None) -> None:
    """Index audio files and folders (recursively); files already indexed are skipped."""
    _require_ffmpeg()
    found = scan.scan([path.expanduser() for path in paths])
    try:
        with click.progressbar(
            length=max(library.total_bytes(found), 1),
            label="Indexing",
            show_eta=True,
            file=sys.stderr,
            width=30,
        ) as bar:
            report = library.add(found, jobs=jobs, on_progress=bar.update)
    except (library.LibraryError, IndexStoreError, SQLAlchemyError) as error:
        raise _fail(error) from error
    seconds = report.audio_seconds
    speed = seconds / report.elapsed if report.elapsed > 0 else 0.0
    click.echo(
        f"indexed {len(report.indexed)} file(s), {_duration(seconds)} of audio;"
        f" {report.already_indexed} already indexed; {len(report.problems)} skipped"
    )
    for path, why in report.problems:
        click.echo(f"  skipped {path}: {why}")
    click.echo(
        f"{seconds:.1f} s of audio in {report.elapsed:.2f} s ({speed:.0f}x real time)", err=True
    )
    if report.interrupted:
        raise click.ClickException(
            "interrupted: the files indexed so far are kept; run the same command again to resume"
        )


@library_cli.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["txt", "json"]), default="txt", show_default=True
)
@with_appcontext
@_database_errors_in_one_line
def list_command(fmt: str) -> None:
    """List the indexed files."""
    rows = library.files()
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": row.id,
                        "path": row.path,
                        "title": row.title,
                        "artist": row.artist,
                        "album": row.album,
                        "isrc": row.isrc,
                        "duration": row.duration_seconds,
                        "track_id": row.track.id if row.track else None,
                    }
                    for row in rows
                ],
                indent=2,
            )
        )
        return
    for row in rows:
        name = f"{row.artist} - {row.title}" if row.artist else (row.title or "")
        click.echo(f"{row.id:>6}  {_duration(row.duration_seconds or 0)}  {name}  [{row.path}]")
    if not rows:
        click.echo("the library is empty: add music with `flask library add PATH...`", err=True)


def _require_targets(targets: tuple[str, ...], ids: tuple[int, ...]) -> None:
    if not targets and not ids:
        raise click.UsageError("name files or folders, or give --id ID")


_ids_option = click.option(
    "--id",
    "ids",
    type=click.IntRange(1),
    multiple=True,
    help="A library file's id (see `flask library list`); repeatable.",
)


@library_cli.command("remove")
@click.argument("targets", nargs=-1)
@_ids_option
@with_appcontext
@_database_errors_in_one_line
def remove_command(targets: tuple[str, ...], ids: tuple[int, ...]) -> None:
    """Forget files by path, every file under a folder, or by --id."""
    _require_targets(targets, ids)
    removed, unmatched = library.remove(targets, ids)
    _report(
        [f"removed {row.path}" for row in removed], f"{len(removed)} file(s) removed", unmatched
    )


@library_cli.command("publish")
@click.argument("targets", nargs=-1)
@_ids_option
@with_appcontext
@_database_errors_in_one_line
def publish_command(targets: tuple[str, ...], ids: tuple[int, ...]) -> None:
    """Show the tracks of these files in the public catalogue (by path, folder or --id).

    Tracks found only in your library are private until published: admins, and the owners
    of sets they play in, see them; everyone else sees an unidentified row.
    """
    _require_targets(targets, ids)
    published, unmatched = library.publish(targets, ids)
    lines = [f"published #{track.id} {track.artist} - {track.title}" for track in published]
    _report(lines, f"{len(published)} track(s) published", unmatched)


def _report(lines: list[str], total: str, unmatched: list[str]) -> None:
    """Print what a command did, then fail naming the targets the library does not hold."""
    for line in lines:
        click.echo(line)
    click.echo(total)
    if unmatched:
        raise click.ClickException("not in the library: " + ", ".join(unmatched))


@library_cli.command("repair")
@with_appcontext
def repair_command() -> None:
    """Forget the files whose fingerprints are lost, so that `add` indexes them again."""
    try:
        repaired = library.repair()
    except (IndexStoreError, SQLAlchemyError) as error:
        raise _fail(error) from error
    for name in repaired.missing_segments:
        click.echo(f"dropped missing index segment {name}")
    for path in repaired.forgotten:
        click.echo(f"forgot {path}")
    click.echo(
        f"{len(repaired.forgotten)} file(s) to index again"
        + (": run `flask library add` on your music" if repaired.forgotten else "")
    )


@library_cli.command("stats")
@with_appcontext
@_database_errors_in_one_line
def stats_command() -> None:
    """Files, hours of audio and the index's size."""
    stats = library.stats()
    click.echo(f"files: {stats.files}")
    click.echo(f"audio: {stats.seconds / 3600:.2f} h")
    stale = (
        f", plus {stats.stale_rows} of removed files until their segment is merged"
        if stats.stale_rows
        else ""
    )
    click.echo(f"fingerprints: {stats.rows} in {stats.segments} segment(s){stale}")
    click.echo(f"index size: {stats.index_bytes / 1e6:.1f} MB")


@click.command("identify")
@click.argument("mix", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["json", "txt", "cue"]), default="txt", show_default=True
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=library.MIN_CONFIDENCE,
    show_default=True,
    help="Leave out entries the engine is less sure of (0..1).",
)
@with_appcontext
def identify_command(mix: Path, fmt: str, min_confidence: float) -> None:
    """Print the tracklist of a mix file found in your own library."""
    _require_ffmpeg()
    try:
        result = library.identify(mix.expanduser(), min_confidence)
    except (library.LibraryError, IndexStoreError, SQLAlchemyError) as error:
        raise _fail(error) from error
    for name in result.missing_segments:
        click.echo(
            f"warning: index segment {name} is missing or damaged, its tracks cannot be found:"
            " run `flask library repair`, then `flask library add` on your music again",
            err=True,
        )
    if fmt == "json":
        document = {
            "duration": round(result.duration, 2),
            "tracks": [_play_json(play, result.files) for play in result.plays],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif fmt == "cue":
        click.echo(tracklist_formats.to_cue(result.plays, result.duration, mix, mix.stem), nl=False)
    else:
        click.echo(tracklist_formats.to_text(result.plays, result.duration), nl=False)
    if not result.plays:
        click.echo("no track of the library was found in this mix", err=True)
    speed = result.duration / result.elapsed if result.elapsed > 0 else 0.0
    click.echo(
        f"{result.duration:.1f} s of audio in {result.elapsed:.2f} s ({speed:.0f}x real time)",
        err=True,
    )


def _play_json(play: Play, files: Mapping[int, library.IdentifiedFile]) -> dict[str, Any]:
    # Library plays always name their file (``library.as_plays``).
    assert play.track is not None
    assert play.track.library_file_id is not None
    found = files[play.track.library_file_id]
    return {
        "start": play.start,
        "end": play.end,
        "title": play.track.title,
        "artist": play.track.artist,
        "path": found.path,
        "track_id": found.track_id,
        "confidence": play.confidence,
        "speed": play.speed,
        "pitch": play.pitch,
    }
