"""``flask`` commands for operators: ``flask check`` and friends."""

from __future__ import annotations

import errno
import shutil
import socket

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from set2tracks.extensions import db


def _port_problem(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (
                    f"port {port} is already in use: stop the program using it,"
                    f" or choose another port, e.g. `make run PORT={port + 1}`"
                )
            return f"cannot listen on {host}:{port} ({error.strerror})"
    return None


def _database_problem() -> str | None:
    url = db.engine.url
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0][:200]
        where = url.render_as_string(hide_password=True)
        return f"cannot reach the database {where} ({reason}): start it or fix DATABASE_URL"
    return None


@click.command("check")
@with_appcontext
@click.option("--port", type=int, help="Also check that this port is free to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True)
def check_command(port: int | None, host: str) -> None:
    """Check that the app can start here: database, system tools, port."""
    problems = []
    if (problem := _database_problem()) is not None:
        problems.append(problem)
    if port is not None and (problem := _port_problem(host, port)) is not None:
        problems.append(problem)
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            click.echo(
                f"Warning: {tool} not found: browsing works, processing sets needs it"
                " (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)",
                err=True,
            )
    if problems:
        raise click.ClickException("; ".join(problems))
    click.echo(f"ok: {current_app.config['SET2TRACKS_ENV']} profile, database reachable")


def init_cli(app: Flask) -> None:
    app.cli.add_command(check_command)
