"""``flask`` commands for operators: ``flask check`` and friends."""

from __future__ import annotations

import errno
import socket
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from set2tracks.auth import services
from set2tracks.errors import DomainError
from set2tracks.extensions import db
from set2tracks.fingerprint.audio import AudioError, resolve_ffmpeg
from set2tracks.fingerprint.cli import identify_command, library_cli
from set2tracks.pipeline.cli import submissions_cli


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


def _ffmpeg_report() -> str:
    try:
        found = resolve_ffmpeg()
    except AudioError as error:
        return f"Warning: {error}. Browsing works; processing sets needs ffmpeg."
    if not found.bundled:
        return f"ffmpeg: {found.path} (the system's)"
    # Without ffprobe, uploads are probed with ``ffmpeg -i``: nothing is missing.
    return f"ffmpeg: {found.path} (bundled with imageio-ffmpeg: no ffmpeg on the PATH)"


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
    report = _ffmpeg_report()
    click.echo(report, err=report.startswith("Warning"))
    if problems:
        raise click.ClickException("; ".join(problems))
    click.echo(f"ok: {current_app.config['SET2TRACKS_ENV']} profile, database reachable")


users_cli = AppGroup("users", help="Manage accounts.")
tokens_cli = AppGroup("tokens", help="Manage personal API tokens.")


def _read_password(password_stdin: bool) -> str:
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("no password given (type it, or pipe it with --password-stdin)")
    return str(password)


@users_cli.command("create")
@click.argument("email")
@click.option("--name", "display_name", help="Display name (default: the email's local part).")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
@click.option("--premium", is_flag=True, help="Give the account premium priority.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(
    email: str, display_name: str | None, admin: bool, premium: bool, password_stdin: bool
) -> None:
    """Create an account (the password is asked for, or read from standard input)."""
    password = _read_password(password_stdin)
    try:
        user = services.create_user(
            email,
            password,
            display_name or email.split("@")[0],
            is_admin=admin,
            is_premium=premium,
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.detail) from None
    roles = [role for role, on in (("admin", admin), ("premium", premium)) if on]
    click.echo(
        f"created account {user.id} for {user.email}" + (f" ({', '.join(roles)})" if roles else "")
    )


@users_cli.command("set-admin")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="Remove the admin role instead.")
def set_admin_command(email: str, revoke: bool) -> None:
    """Make an account an administrator (or no longer one with --revoke)."""
    try:
        user = services.set_admin(email, is_admin=not revoke)
    except DomainError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"{user.email} is {'no longer ' if revoke else ''}an administrator")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. 'laptop script'.")
def create_token_command(email: str, name: str) -> None:
    """Create a personal API token; it is printed once, alone on the last line."""
    user = services.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no account has the email {email}")
    issued = services.create_api_token(user.id, name)
    click.echo(f"token {issued.id} created for {user.email}; it is shown only now:", err=True)
    click.echo(issued.secret)


def init_cli(app: Flask) -> None:
    app.cli.add_command(check_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(library_cli)
    app.cli.add_command(identify_command)
    app.cli.add_command(submissions_cli)
