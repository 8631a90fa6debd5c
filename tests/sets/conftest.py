"""Recordings for the submission tests, made once per session with the project's ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from set2tracks.fingerprint import audio

HLS_PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:40,\nother.mp3\n#EXT-X-ENDLIST\n"
FFCONCAT = "ffconcat version 1.0\nfile other.mp3\n"


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(
        [audio.ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True
    )


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real files by name: audio that passes, and everything an upload must refuse."""
    folder = tmp_path_factory.mktemp("media")
    files = {name: folder / name for name in ("mix.mp3", "mix.flac", "other.mp3", "short.mp3")}
    _ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=40", "-ac", "1", "-b:a", "32k", files["mix.mp3"])
    _ffmpeg("-f", "lavfi", "-i", "sine=f=660:d=35", "-ac", "1", "-ar", "8000", files["mix.flac"])
    _ffmpeg("-f", "lavfi", "-i", "sine=f=550:d=40", "-ac", "1", "-b:a", "32k", files["other.mp3"])
    _ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=5", "-ac", "1", "-b:a", "32k", files["short.mp3"])
    # Seven hours of silence in about 30 KB: refused by its duration, never decoded.
    files["bomb.flac"] = folder / "bomb.flac"
    _ffmpeg(
        *["-f", "lavfi", "-i", "anullsrc=r=4000:cl=mono", "-t", str(7 * 3600)],
        *["-frame_size", "65535", "-compression_level", "0", files["bomb.flac"]],
    )
    files["cover.mp3"] = folder / "cover.mp3"  # a picture, whatever its name says
    png = folder / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1", png)
    files["cover.mp3"].write_bytes(png.read_bytes())
    files["playlist.mp3"] = folder / "playlist.mp3"
    files["playlist.mp3"].write_text(HLS_PLAYLIST)
    files["concat.mp3"] = folder / "concat.mp3"
    files["concat.mp3"].write_text(FFCONCAT)
    files["notes.mp3"] = folder / "notes.mp3"
    files["notes.mp3"].write_text("Track 1: Bicep - Glue\nTrack 2: unknown\n")
    files["empty.mp3"] = folder / "empty.mp3"
    files["empty.mp3"].write_bytes(b"")
    return files
