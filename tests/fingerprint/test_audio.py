"""Reading audio through FFmpeg: which binary runs, what a probe reports from headers alone,
and what ffmpeg may open (that local file, as audio, and nothing else)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from set2tracks.fingerprint import audio
from set2tracks.fingerprint.audio import AudioError, Probe, Samples, decode, probe


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(
        [audio.ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True
    )


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of a tone, in a folder the hostile files point at."""
    folder = tmp_path_factory.mktemp("uploads")
    path = folder / "canary.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=3", path)
    return path


class CanaryServer:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.hits: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/canary.mp3"


@pytest.fixture
def http_canary(canary: Path) -> Iterator[CanaryServer]:
    """A loopback HTTP server that serves the canary and counts every request."""
    body = canary.read_bytes()
    holder: list[CanaryServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            holder[0].hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(CanaryServer(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


def decoded_samples(path: Path) -> int:
    return sum(len(block) for block in decode(path))


def test_the_canary_itself_decodes(canary: Path) -> None:
    assert decoded_samples(canary) > 2 * 8000


HLS_FILE = (
    "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\ncanary.mp3\n#EXTINF:3,\n{url}\n#EXT-X-ENDLIST\n"
)
HLS_HTTP = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\n{url}\n#EXT-X-ENDLIST\n"


@pytest.mark.parametrize(
    "script",
    [
        HLS_FILE,
        HLS_HTTP,
        "ffconcat version 1.0\nfile canary.mp3\nfile {url}\n",
        "ffconcat version 1.0\nfile {url}\n",
    ],
    ids=["hls-file", "hls-http", "ffconcat-file", "ffconcat-http"],
)
@pytest.mark.parametrize("name", ["upload.mp3", "upload.m3u8"])
def test_a_playlist_disguised_as_audio_is_refused_and_reads_nothing(
    canary: Path, http_canary: CanaryServer, script: str, name: str
) -> None:
    hostile = canary.parent / name
    hostile.write_text(script.format(url=http_canary.url))
    blocks: list[Samples] = []

    # The demuxer allow-list refuses a concat script, and a playlist it recognises. FFmpeg 7+
    # does not take a playlist named .mp3 for one (FFmpeg 5 does): it is refused as not MP3.
    whitelisted = name.endswith(".m3u8") or script.startswith("ffconcat")
    with pytest.raises(AudioError, match="whitelist" if whitelisted else None):
        blocks.extend(decode(hostile))

    assert blocks == []  # not one sample of the canary came out
    assert http_canary.hits == []


def test_a_name_that_looks_like_a_protocol_is_a_local_file(
    canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(canary.parent)
    (canary.parent / "set:1.mp3").write_bytes(canary.read_bytes())

    blocks = list(decode(Path("set:1.mp3")))

    assert np.concatenate(blocks).size == decoded_samples(canary)


# Which ffmpeg runs.


@pytest.fixture
def fresh_resolution() -> Iterator[None]:
    """Resolve ffmpeg anew for the test, and again for the tests after it."""
    audio.resolve_ffmpeg.cache_clear()
    yield
    audio.resolve_ffmpeg.cache_clear()


def test_without_a_system_ffmpeg_the_bundled_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_resolution: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no ffmpeg and no ffprobe

    found = audio.resolve_ffmpeg()

    assert found.bundled
    assert Path(found.path).is_relative_to(Path(imageio_ffmpeg.__file__).parent)
    assert audio.ffprobe_path() is None
    version = subprocess.run([found.path, "-version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("ffmpeg version")


def test_a_system_ffmpeg_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_resolution: None
) -> None:
    system = tmp_path / "ffmpeg"
    system.symlink_to(imageio_ffmpeg.get_ffmpeg_exe())  # any working ffmpeg on the PATH
    monkeypatch.setenv("PATH", str(tmp_path))

    assert audio.resolve_ffmpeg() == audio.FFmpeg(str(system), bundled=False)


def test_no_ffmpeg_at_all_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_resolution: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "")  # imageio honours it first: keep it out

    def no_binary() -> str:
        raise RuntimeError("No ffmpeg exe could be found.")  # what imageio-ffmpeg raises

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)

    with pytest.raises(AudioError, match="ffmpeg not found: install it"):
        audio.ffmpeg_path()


@pytest.mark.skipif(
    os.environ.get("SET2TRACKS_EXPECT_BUNDLED_FFMPEG") != "1",
    reason="only in the CI pass that hides the system ffmpeg",
)
def test_this_run_decodes_with_the_bundled_ffmpeg() -> None:
    # .ci/run sets the variable for its pass without ffmpeg on the PATH: every test of that
    # pass that decoded or probed did it with the wheel's binary, not a system one.
    assert shutil.which("ffmpeg") is None
    assert shutil.which("ffprobe") is None
    assert audio.resolve_ffmpeg().bundled


# Probing: headers only, the same answers from ffprobe and from ``ffmpeg -i``.

PROBERS = ["ffprobe", "ffmpeg", "bundled"]


@pytest.fixture(params=PROBERS)
def prober(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    fresh_resolution: None,
) -> str:
    """Probe through the system ffprobe, the system ffmpeg alone, or the bundled ffmpeg."""
    kind: str = request.param
    if kind == "ffprobe":
        if shutil.which("ffprobe") is None:
            pytest.skip("no system ffprobe on this machine")
        return kind
    bin_dir = tmp_path_factory.mktemp("bin")
    if kind == "ffmpeg":
        system = shutil.which("ffmpeg")
        if system is None:
            pytest.skip("no system ffmpeg on this machine")
        (bin_dir / "ffmpeg").symlink_to(system)
    monkeypatch.setenv("PATH", str(bin_dir))
    return kind


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three seconds of a tone in the formats uploads come in, and files that are not audio."""
    folder = tmp_path_factory.mktemp("media")
    tone = ["-f", "lavfi", "-i", "sine=f=440:d=3:r=44100"]
    files = {name: folder / name for name in ("tone.mp3", "tone.flac", "tone.wav", "tone.ogg")}
    for path in files.values():
        ffmpeg(*tone, path)
    files["tone.m4a"] = folder / "tone.m4a"
    ffmpeg(*tone, "-c:a", "aac", files["tone.m4a"])
    files["video.mp4"] = folder / "video.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=2:s=64x48", "-c:v", "mpeg4", files["video.mp4"])
    files["picture.png"] = folder / "picture.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48", "-frames:v", "1", files["picture.png"])
    # Six hours of silence at 4 kHz in 65535-sample FLAC frames: under 30 KB on disk.
    files["bomb.flac"] = folder / "bomb.flac"
    ffmpeg(
        *["-f", "lavfi", "-i", "anullsrc=r=4000:cl=mono", "-t", "21600"],
        *["-frame_size", "65535", "-compression_level", "0", files["bomb.flac"]],
    )
    files["notes.mp3"] = folder / "notes.mp3"
    files["notes.mp3"].write_text("Track 1 - Artist A\nTrack 2 - Artist B\n" * 40)
    files["empty.mp3"] = folder / "empty.mp3"
    files["empty.mp3"].touch()
    return files


@pytest.mark.parametrize(
    ("name", "format_name", "codec"),
    [
        ("tone.mp3", "mp3", "mp3"),
        ("tone.flac", "flac", "flac"),
        ("tone.wav", "wav", "pcm_s16le"),
        ("tone.ogg", "ogg", "vorbis"),
        ("tone.m4a", "mov,mp4,m4a,3gp,3g2,mj2", "aac"),
    ],
)
def test_audio_files_report_their_duration_and_codec(
    media: dict[str, Path], prober: str, name: str, format_name: str, codec: str
) -> None:
    found = probe(media[name])

    # MP3 adds encoder delay, and FFmpeg 5 counts it in the duration (3.03 s).
    assert found.duration == pytest.approx(3.0, abs=0.04)
    assert (found.format_name, found.audio_codec, found.audio_streams) == (format_name, codec, 1)


def test_ffprobe_and_ffmpeg_give_the_same_answers(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        pytest.skip("needs the system ffprobe and ffmpeg (of one FFmpeg release)")
    names = ["tone.mp3", "tone.flac", "tone.wav", "tone.ogg", "tone.m4a", "bomb.flac"]
    with_ffprobe = [probe(media[name]) for name in names]
    (tmp_path / "ffmpeg").symlink_to(audio.ffmpeg_path())
    monkeypatch.setenv("PATH", str(tmp_path))

    assert [probe(media[name]) for name in names] == with_ffprobe


def test_a_small_file_that_decodes_to_hours_is_measured_from_its_headers(
    media: dict[str, Path], prober: str
) -> None:
    bomb = media["bomb.flac"]

    found = probe(bomb)

    assert bomb.stat().st_size < 30_000
    assert found == Probe(duration=21600.0, format_name="flac", audio_codec="flac", audio_streams=1)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("video.mp4", "no audio in this file"),
        ("picture.png", "not an audio file in an accepted format"),
        ("notes.mp3", "not an audio file that can be read"),
        ("empty.mp3", "the file is empty"),
        ("missing.mp3", "file not found"),
    ],
)
def test_files_without_audio_are_refused_in_one_line(
    media: dict[str, Path], prober: str, name: str, message: str
) -> None:
    with pytest.raises(AudioError, match=message) as refused:
        probe(media.get(name, media["tone.mp3"].parent / name))

    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("script", "name"),
    [
        (HLS_FILE, "upload.m3u8"),
        (HLS_HTTP, "upload.m3u8"),
        ("ffconcat version 1.0\nfile canary.mp3\nfile {url}\n", "upload.mp3"),
        ("ffconcat version 1.0\nfile {url}\n", "upload.flac"),
    ],
    ids=["hls-file", "hls-http", "ffconcat-file", "ffconcat-http"],
)
def test_the_demuxer_allow_list_refuses_a_playlist_and_reads_nothing(
    canary: Path, http_canary: CanaryServer, prober: str, script: str, name: str
) -> None:
    hostile = canary.parent / name
    hostile.write_text(script.format(url=http_canary.url))

    # This message comes only from ffmpeg's "Format not on whitelist": the allow-list
    # refused what the content is, before the playlist's entries were opened.
    with pytest.raises(AudioError, match="not an audio file in an accepted format"):
        probe(hostile)

    assert http_canary.hits == []


def test_a_playlist_renamed_mp3_is_refused(
    canary: Path, http_canary: CanaryServer, prober: str
) -> None:
    hostile = canary.parent / "playlist.mp3"
    hostile.write_text(HLS_HTTP.format(url=http_canary.url))

    with pytest.raises(AudioError, match="not an audio file"):
        probe(hostile)

    assert http_canary.hits == []


def test_text_a_user_controls_cannot_change_the_figures(
    media: dict[str, Path], prober: str, tmp_path: Path
) -> None:
    # ffmpeg -i prints the file name and the tags around the lines the prober reads.
    fake = "\n  Duration: 99:00:00.00, start: 0.000000, bitrate: 1\n  Stream #0:1: Audio: x"
    path = tmp_path / f"it's{fake}.flac"
    tags = ["-metadata", f"title=x{fake}"]
    ffmpeg("-i", media["tone.flac"], *tags, "-c", "copy", audio.file_url(path))

    found = probe(path)

    assert found == Probe(duration=3.0, format_name="flac", audio_codec="flac", audio_streams=1)


def test_a_prober_that_takes_too_long_is_stopped(media: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match=r"took longer than 0\.001 s"):
        probe(media["tone.flac"], timeout=0.001)


def test_decoding_stops_at_the_longest_duration_asked_when_headers_understate_it(
    tmp_path: Path,
) -> None:
    # An MP3 without a Xing header is timed from its first frames' bit rate: two loud
    # seconds at 320 kb/s, then ten minutes at 8 kb/s, probe as under a minute.
    loud, quiet, upload = tmp_path / "loud.mp3", tmp_path / "quiet.mp3", tmp_path / "up.mp3"
    no_header = ["-write_xing", "0", "-id3v2_version", "0"]
    ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-b:a", "320k", *no_header, loud)
    ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "600", "-b:a", "8k", *no_header, quiet
    )
    upload.write_bytes(loud.read_bytes() + quiet.read_bytes())

    claimed = probe(upload).duration
    decoded = sum(len(block) for block in decode(upload, duration=120.0)) / audio.SAMPLE_RATE

    assert claimed < 60
    assert decoded == pytest.approx(120.0, abs=0.25)
