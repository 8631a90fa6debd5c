"""What ffmpeg may open when it decodes a file: that local file, as audio, and nothing else."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from set2tracks.fingerprint.audio import AudioError, Samples, decode


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True)


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


@pytest.mark.parametrize(
    "script",
    [
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\ncanary.mp3\n"
        "#EXTINF:3,\n{url}\n#EXT-X-ENDLIST\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\n{url}\n#EXT-X-ENDLIST\n",
        "ffconcat version 1.0\nfile canary.mp3\nfile {url}\n",
        "ffconcat version 1.0\nfile {url}\n",
    ],
    ids=["hls-file", "hls-http", "ffconcat-file", "ffconcat-http"],
)
def test_a_playlist_disguised_as_mp3_is_refused_and_reads_nothing(
    canary: Path, http_canary: CanaryServer, script: str
) -> None:
    hostile = canary.parent / "upload.mp3"
    hostile.write_text(script.format(url=http_canary.url))
    blocks: list[Samples] = []

    with pytest.raises(AudioError, match="whitelist"):
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
