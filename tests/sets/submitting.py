"""Helpers for the submission tests: credentials, uploads, what is left in ``UPLOAD_DIR``."""

from __future__ import annotations

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
