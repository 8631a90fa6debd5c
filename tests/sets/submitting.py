"""Helpers for the submission tests: credentials, uploads, what is left in ``UPLOAD_DIR``."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from set2tracks.auth.services import create_api_token
from set2tracks.extensions import db
from set2tracks.sets.models import Submission

API = "/api/v1/submissions"


def bearer(user: Any) -> dict[str, str]:
    """Return the header of a new API token of ``user`` (commits the test's rows so far)."""
    db.session.commit()
    token = create_api_token(user.id, "tests").secret
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def post_file(
    client: FlaskClient,
    path: Path,
    *,
    to: str = API,
    name: str | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> TestResponse:
    """Post ``path`` as the multipart field ``file``, with the other form ``fields``."""
    with path.open("rb") as handle:
        return client.post(
            to,
            data={"file": (handle, name or path.name), **fields},
            headers=headers or {},
            content_type="multipart/form-data",
        )


def stored_uploads(app: Flask) -> set[Path]:
    """Return the files in the app's ``UPLOAD_DIR``."""
    folder = Path(app.config["UPLOAD_DIR"])
    return set(folder.iterdir()) if folder.exists() else set()


def submission(submission_id: int) -> Submission:
    """Return a submission as the database holds it now."""
    db.session.expire_all()
    found = db.session.get(Submission, submission_id)
    assert found is not None
    return found


def submission_count() -> int:
    db.session.expire_all()
    return db.session.query(Submission).count()


class WatchedBody(io.BytesIO):
    """A request body that tells how much of it the server read, whichever way it read it.

    read(), readinto(), readline() and iteration all move the position: counting calls to
    one of them (werkzeug reads with readinto) would miss the others.
    """

    @property
    def bytes_read(self) -> int:
        return self.tell()


class HeldBody(WatchedBody):
    """A body that stops arriving after ``hold_at`` bytes, until ``release`` is set.

    ``reached`` is set once the server has read up to there: an upload caught mid-way.
    """

    def __init__(self, data: bytes, hold_at: int) -> None:
        super().__init__(data)
        self.hold_at = hold_at
        self.reached = threading.Event()
        self.release = threading.Event()

    def _allowed(self, size: int | None) -> int | None:
        position = self.tell()
        if position < self.hold_at:
            wanted = self.hold_at - position
            return wanted if size is None or size < 0 else min(size, wanted)
        if not self.release.is_set():
            self.reached.set()
            self.release.wait(timeout=30)
        return size

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self._allowed(size))

    def readinto(self, buffer: Any) -> int:
        allowed = self._allowed(len(buffer))
        view = memoryview(buffer)[: len(buffer) if allowed is None else allowed]
        return super().readinto(view)


def multipart_upload(path: Path, *, boundary: str = "x", **fields: str) -> tuple[bytes, str]:
    """Return a multipart body with ``fields`` then ``path`` as the field ``file``, and its type."""
    mark = boundary.encode()
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (mark, name.encode(), value.encode())
        for name, value in fields.items()
    ]
    parts.append(
        b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        % (mark, path.name.encode())
        + path.read_bytes()
        + b"\r\n--%s--\r\n" % mark
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
