"""``flask check``: what `make run` asks before serving."""

from __future__ import annotations

import socket
from pathlib import Path

from flask import Flask

from set2tracks import create_app
from tests.backends import Backends
from tests.conftest import base_config


def test_check_passes_on_a_working_setup(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["check"])

    assert result.exit_code == 0
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
