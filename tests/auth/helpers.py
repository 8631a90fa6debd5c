"""Signing test clients in, and the CSRF token their forms carry."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from set2tracks.auth import services
from set2tracks.auth.models import User
from set2tracks.clients.mail import MemoryMailer, mailer
from set2tracks.extensions import db

_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def sign_in(client: FlaskClient, user: Any) -> None:
    """Put ``user`` in the client's session, as a successful sign-in does."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["_signed_in_at"] = int(time.time())


def csrf_token(client: FlaskClient) -> str:
    """Return the CSRF token of the client's session, read off the sign-in form."""
    page = client.get("/reset-password").get_data(as_text=True)
    match = _CSRF.search(page)
    assert match is not None, "no CSRF token on the form"
    return match.group(1) or match.group(2)


PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a whole new passphrase 2026"


def make_user(email: str = "ada@example.com", password: str = PASSWORD, **extra: Any) -> User:
    user = services.create_user(email, password, extra.pop("display_name", "Ada"), **extra)
    db.session.commit()
    return user


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None) -> Any:
    """POST a form the way the browser does: with the session's CSRF token."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)})


def login(client: FlaskClient, email: str, password: str, **extra: Any) -> Any:
    return post(client, "/login", {"email": email, "password": password, **extra})


def session_cookie(app: Flask, client: FlaskClient) -> str | None:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie else None


def signed_in_as(client: FlaskClient) -> str | None:
    body = client.get("/api/v1/me")
    return body.json["email"] if body.status_code == 200 else None


def outbox(app: Flask) -> list[Any]:
    backend = mailer(app)
    assert isinstance(backend, MemoryMailer)
    return backend.outbox


@contextlib.contextmanager
def meeting_before_update(table: str, parties: int = 2) -> Iterator[None]:
    """Hold each thread's first UPDATE of ``table`` until every thread has reached its own.

    Whatever checks a thread makes before writing are then all made before anyone writes:
    a check-then-update lets every thread through, every time; a conditional UPDATE does not.
    """
    with _meeting_before(f"UPDATE {table.upper()} ", parties):
        yield


@contextlib.contextmanager
def meeting_before_insert(table: str, parties: int = 2) -> Iterator[None]:
    """Hold each thread's first INSERT into ``table`` until every thread reaches its own."""
    with _meeting_before(f"INSERT INTO {table.upper()} ", parties):
        yield


@contextlib.contextmanager
def _meeting_before(prefix: str, parties: int) -> Iterator[None]:
    """Hold each thread's first statement starting with ``prefix`` until all have one (or 3 s)."""
    barrier = threading.Barrier(parties)
    waited = threading.local()

    def meet(*args: Any) -> None:
        statement = str(args[2]).lstrip().upper()
        if statement.startswith(prefix) and not getattr(waited, "done", False):
            waited.done = True
            # A thread whose statement waits on another's lock never arrives: go on.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=3)

    event.listen(db.engine, "before_cursor_execute", meet)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", meet)
