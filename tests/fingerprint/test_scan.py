"""Scanning finds a library's audio files; tags come from real files, or from their names."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mutagen.flac import FLAC
from mutagen.mp4 import MP4, MP4FreeForm

from set2tracks.fingerprint import audio
from set2tracks.fingerprint.scan import (
    ScanResult,
    Tags,
    content_hash,
    read_tags,
    scan,
)

ISRC = "GBAYE0601498"
TAGGED = Tags(title="T", artist="A", album="B", isrc=ISRC)


def tone(path: Path, *metadata: str, extra: tuple[str, ...] = ()) -> Path:
    """Write a short sine in the format the suffix names, with ``key=value`` metadata."""
    tags = [arg for item in metadata for arg in ("-metadata", item)]
    subprocess.run(
        [
            audio.ffmpeg_path(),
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.2",
            *tags,
            *extra,
            str(path),
        ],
        check=True,
    )
    return path


@pytest.mark.parametrize(
    ("name", "isrc_key", "extra", "expected"),
    [
        # Taggers write TSRC; ffmpeg itself writes the ISRC to a TXXX frame.
        ("tsrc.mp3", "TSRC", (), TAGGED),
        ("txxx.mp3", "ISRC", (), TAGGED),
        ("out.flac", "ISRC", (), TAGGED),
        ("out.ogg", "ISRC", (), TAGGED),
        ("out.opus", "ISRC", (), TAGGED),
        ("out.aiff", "ISRC", ("-write_id3v2", "1"), TAGGED),
        ("out.wma", "ISRC", (), TAGGED),
        ("out.wv", "ISRC", (), TAGGED),
        # ffmpeg's MP4 muxer drops an ISRC it has no atom for.
        ("out.m4a", "ISRC", (), Tags(title="T", artist="A", album="B", isrc=None)),
    ],
)
def test_tags_are_read_from_each_container(
    tmp_path: Path, name: str, isrc_key: str, extra: tuple[str, ...], expected: Tags
) -> None:
    path = tone(
        tmp_path / name, "title=T", "artist=A", "album=B", f"{isrc_key}={ISRC}", extra=extra
    )

    assert read_tags(path) == expected


def test_isrc_is_read_from_the_itunes_freeform_atom(tmp_path: Path) -> None:
    path = tone(tmp_path / "itunes.m4a", "title=T")
    audio = MP4(path)
    audio["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(ISRC.encode())]
    audio.save()

    assert read_tags(path).isrc == ISRC


def test_untagged_file_takes_artist_and_title_from_its_name(tmp_path: Path) -> None:
    path = tone(tmp_path / "Daft Punk - One More Time.wav")

    assert read_tags(path) == Tags(title="One More Time", artist="Daft Punk", album=None, isrc=None)


def test_name_without_separator_becomes_the_whole_title(tmp_path: Path) -> None:
    path = tone(tmp_path / "Around the World.flac")

    assert read_tags(path).title == "Around the World"
    assert read_tags(path).artist is None


def test_artist_tag_wins_over_the_name_when_only_the_title_is_missing(tmp_path: Path) -> None:
    path = tone(tmp_path / "Unknown - Da Funk.flac", "artist=Daft Punk", "title=   ")

    assert read_tags(path) == Tags(title="Da Funk", artist="Daft Punk", album=None, isrc=None)


def test_garbage_with_an_audio_extension_still_gets_a_title(tmp_path: Path) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"ID3\x04\x00\x00\xff\xff\xff\xffnot audio at all" * 10)

    assert read_tags(path) == Tags(title="x", artist=None, album=None, isrc=None)


def test_missing_file_gets_a_title_from_its_name(tmp_path: Path) -> None:
    assert read_tags(tmp_path / "Gone - Away.mp3").title == "Away"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NOT-AN-ISRC", None),
        ("GBAYE060149", None),
        ("gb-aye-06-01498", ISRC),
        (" GB AYE 06 01498 ", ISRC),
    ],
)
def test_isrc_is_normalized_or_dropped(tmp_path: Path, raw: str, expected: str | None) -> None:
    path = tone(tmp_path / "t.flac", "title=T", f"ISRC={raw}")

    assert read_tags(path).isrc == expected


def test_control_characters_are_cleaned_and_long_values_cut(tmp_path: Path) -> None:
    path = tone(tmp_path / "t.flac")
    audio = FLAC(path)
    audio["title"] = "One\x00More\tTime\x1b  "
    audio["artist"] = "\x00 \n"
    audio["album"] = "a" * 1000
    audio.save()

    tags = read_tags(path)

    assert tags == Tags(title="One More Time", artist=None, album="a" * 300, isrc=None)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "House" / "Deep").mkdir(parents=True)
    (root / ".trash").mkdir()
    (root / "top.mp3").write_bytes(b"top")
    (root / "House" / "Deep" / "deep.FLAC").write_bytes(b"deep")
    (root / "House" / "house.m4a").write_bytes(b"house")
    (root / "House" / "cover.jpg").write_bytes(b"jpg")
    (root / "House" / "notes.txt").write_bytes(b"notes")
    (root / "House" / "._house.m4a").write_bytes(b"macOS resource fork")
    (root / ".trash" / "deleted.mp3").write_bytes(b"deleted")
    return root


def test_folders_are_walked_for_audio_files_only(library: Path) -> None:
    result = scan([library])

    assert result == ScanResult(
        files=[
            library / "House" / "Deep" / "deep.FLAC",
            library / "House" / "house.m4a",
            library / "top.mp3",
        ],
        problems=[],
    )


def test_a_file_named_explicitly_is_kept_whatever_its_extension(library: Path) -> None:
    notes = library / "House" / "notes.txt"

    result = scan([library, notes])

    assert notes in result.files
    assert library / "House" / "cover.jpg" not in result.files


def test_relative_paths_come_back_absolute(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(library / "House")

    result = scan([Path("."), Path("notes.txt")])

    assert result.files == [
        library / "House" / "Deep" / "deep.FLAC",
        library / "House" / "house.m4a",
        library / "House" / "notes.txt",
    ]


def test_missing_paths_are_reported_and_the_rest_still_scanned(library: Path) -> None:
    missing = library / "Techno"

    result = scan([missing, library / "top.mp3"])

    assert result == ScanResult(files=[library / "top.mp3"], problems=[(missing, "does not exist")])


def test_broken_links_and_special_files_are_reported(library: Path) -> None:
    broken = library / "moved.mp3"
    broken.symlink_to(library / "elsewhere.mp3")
    fifo = library / "pipe.mp3"
    os.mkfifo(fifo)
    loop = library / "loop"
    loop.symlink_to(loop)

    result = scan([library, fifo, loop])

    assert (broken, "broken symbolic link") in result.problems
    assert (fifo, "not a file or folder") in result.problems
    assert (loop, "symbolic link loop") in result.problems
    assert broken not in result.files
    assert fifo not in result.files


def test_each_file_is_listed_once_however_often_it_is_reached(library: Path) -> None:
    (library / "House" / "alias.mp3").symlink_to(library / "top.mp3")
    # A link up the tree would make a walk that follows links loop forever.
    (library / "House" / "Deep" / "up").symlink_to(library, target_is_directory=True)

    result = scan([library, library / "House" / "..", library / "top.mp3"])

    assert result.files == [
        library / "House" / "Deep" / "deep.FLAC",
        library / "House" / "house.m4a",
        library / "top.mp3",
    ]


def test_unreadable_folder_is_reported_and_the_rest_still_scanned(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads every folder, so the refusal the kernel gives other users is simulated.
    locked = library / "House"
    real_scandir = os.scandir

    def scandir(path: str) -> Iterator[os.DirEntry[str]]:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)

    result = scan([library])

    assert result == ScanResult(
        files=[library / "top.mp3"], problems=[(locked, "permission denied")]
    )


def test_content_hash_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.flac"
    data = os.urandom(2 * 1024 * 1024 + 123)
    path.write_bytes(data)
    copy = tmp_path / "renamed.flac"
    copy.write_bytes(data)

    assert content_hash(path) == hashlib.sha256(data).hexdigest()
    assert content_hash(copy) == content_hash(path)
