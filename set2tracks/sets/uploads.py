"""Receiving an uploaded recording: streamed into ``UPLOAD_DIR`` as it arrives, hashed on the way.

Nothing holds the file in memory and nothing copies it afterwards: the multipart parser
writes each chunk of the file part straight into its final place, under a random name the
server chose, while its SHA-256 and size are counted. A body over ``UPLOAD_MAX_BYTES`` is
refused (413) as soon as it passes the limit, and the partial file is removed; so is the file
of any request that fails before a submission takes it over.

Used by views marked ``@reads_its_own_body``: the submitter's quota is checked before this
reads a byte, and the CSRF and NUL-byte checks run here, once the form is parsed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import IO, Any, cast

from flask import current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from set2tracks.auth.views import protect_from_csrf
from set2tracks.perimeter import Request, reject_nul_bytes
from set2tracks.sets.submissions import ReceivedFile, clean_upload_name

FILE_FIELD = "file"
# Room for the form's other fields (CSRF token, options) and the multipart boundaries; the
# file itself is held to UPLOAD_MAX_BYTES exactly, by the sink.
FORM_ALLOWANCE = 64 * 1024
# What werkzeug's multipart decoder may buffer: it reads 64 KB at a time and refuses (413)
# a buffer over the app's form memory limit, which is those same 64 KB.
DECODER_BUFFER = 256 * 1024


def too_large_message() -> str:
    limit_mb = current_app.config["UPLOAD_MAX_BYTES"] / (1024 * 1024)
    return f"This file is too large: uploads may be at most {limit_mb:g} MB."


class _Sink:
    """A file in ``UPLOAD_DIR`` that counts and hashes what the parser writes into it."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()
        # O_EXCL: the random name is ours alone; 0600: uploads are nobody else's to read.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.file = os.fdopen(fd, "w+b")

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise RequestEntityTooLarge(too_large_message())
        self.digest.update(data)
        return self.file.write(data)

    def __getattr__(self, name: str) -> Any:
        # seek, read, close...: what werkzeug's FileStorage asks of its stream.
        return getattr(self.file, name)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class _Receiver:
    """Gives the multipart parser one sink, for one file part; refuses a second file."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.sinks: list[_Sink] = []

    def __call__(self, **_: Any) -> IO[bytes]:
        if self.sinks:
            raise BadRequest("Send one file per submission.")
        sink = _Sink(self.directory / secrets.token_hex(16), self.limit)
        self.sinks.append(sink)
        return cast(IO[bytes], sink)

    def discard(self) -> None:
        for sink in self.sinks:
            sink.discard()


def receive_form() -> tuple[MultiDict[str, str], ReceivedFile | None]:
    """Parse the request's form, streaming its ``file`` part into ``UPLOAD_DIR``.

    Returns the other fields and the stored file (None when the form carries no file). The
    caller owns the file from here: ``submissions.submit_upload`` keeps or removes it.
    Raises 413 for a body over the limit and 400 for a missing or wrong CSRF token, leaving
    no file behind.
    """
    config = current_app.config
    directory = Path(config["UPLOAD_DIR"]).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(directory, config["UPLOAD_MAX_BYTES"])
    current = cast(Request, request)
    current.file_stream_factory = receiver
    if request.mimetype == "multipart/form-data":
        # Only multipart is streamed: a URL-encoded body is read whole into memory, so it
        # keeps the app's small limit.
        current.max_content_length = config["UPLOAD_MAX_BYTES"] + FORM_ALLOWANCE
        current.max_form_memory_size = DECODER_BUFFER
    try:
        form, files = request.form, request.files
        protect_from_csrf()
        reject_nul_bytes()
        received = _received(receiver, files.get(FILE_FIELD))
    except RequestEntityTooLarge as error:
        receiver.discard()
        # werkzeug's own refusal (Content-Length over the limit) says nothing useful.
        raise RequestEntityTooLarge(too_large_message()) from error
    except BaseException:
        receiver.discard()
        raise
    return form, received


def _received(receiver: _Receiver, part: Any) -> ReceivedFile | None:
    """Return the file part as a ``ReceivedFile``; discard any file not sent as ``file``."""
    sink = receiver.sinks[0] if receiver.sinks else None
    if sink is None or part is None or part.stream is not sink:
        receiver.discard()
        return None
    sink.file.close()
    if sink.size == 0 and not part.filename:
        # A browser sends an empty part with no name when no file was chosen.
        sink.path.unlink(missing_ok=True)
        return None
    return ReceivedFile(
        path=sink.path,
        name=clean_upload_name(part.filename),
        sha256=sink.digest.hexdigest(),
        size=sink.size,
    )
