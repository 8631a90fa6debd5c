"""``flask check``: what `make run` asks before serving."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from set2tracks import create_app
from set2tracks.fingerprint import audio
from tests.backends import Backends
from tests.conftest import base_config


def test_check_passes_on_a_working_setup(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["check"])

    assert result.exit_code == 0
    assert "database reachable" in result.output


@pytest.fixture
def fresh_ffmpeg() -> Iterator[None]:
    audio.resolve_ffmpeg.cache_clear()
    yield
    audio.resolve_ffmpeg.cache_clear()


def test_check_says_which_ffmpeg_will_run(app: Flask, fresh_ffmpeg: None) -> None:
    system = shutil.which("ffmpeg")
    if system is None:
        pytest.skip("no system ffmpeg on this machine")

    result = app.test_cli_runner().invoke(args=["check"])

    assert result.exit_code == 0
    assert f"ffmpeg: {system} (the system's)" in result.output


def test_check_accepts_a_machine_without_ffmpeg_or_ffprobe(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_ffmpeg: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither ffmpeg nor ffprobe on it

    result = app.test_cli_runner().invoke(args=["check"])

    assert result.exit_code == 0
    assert "(bundled with imageio-ffmpeg: no ffmpeg on the PATH)" in result.output
    assert "Warning" not in result.output
    assert "database reachable" in result.output


def test_check_names_a_port_in_use(app: Flask) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = app.test_cli_runner().invoke(args=["check", "--port", str(port)])

    assert result.exit_code == 1
    assert f"port {port} is already in use" in result.output
    assert f"make run PORT={port + 1}" in result.output
    assert "Traceback" not in result.output


def test_check_names_an_unreachable_database(backends: Backends, tmp_path: Path) -> None:
    app = create_app(
        base_config(
            backends,
            tmp_path,
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://app:pgsecret@127.0.0.1:1/set2tracks",
        )
    )

    with app.app_context():
        result = app.test_cli_runner().invoke(args=["check"])

    assert result.exit_code == 1
    assert (
        "cannot reach the database postgresql+psycopg://app:***@127.0.0.1:1/set2tracks"
        in result.output
    )
    assert "pgsecret" not in result.output
