"""Receiving a submission form: the recording streamed into ``UPLOAD_DIR`` as it arrives.

Nothing holds the file in memory and nothing copies it afterwards: the multipart body is
parsed here, chunk by chunk (werkzeug's sans-IO ``MultipartDecoder``), and each chunk of the
``file`` part goes straight into its final place, under a random name the server chose,
while its SHA-256 and size are counted. A body over ``UPLOAD_MAX_BYTES`` is refused (413) as
soon as it passes the limit, and the partial file is removed; so is the file of any request
that fails before a submission takes it over.

Order of checks, each before the body costs anything: the submitter's quota (and a place in
it for this upload, ``submissions.upload_slot``), then the CSRF token of a cookie session
*before the first byte of the file is stored*. The token therefore has to arrive first: in
the ``X-CSRFToken`` header, or as the ``csrf_token`` field placed before the ``file`` part
(the submit page's form does; browsers send fields in the form's order). A cross-site form
cannot know the token, so its upload is refused at that point, with nothing written.
Requests signed in by a Bearer token need no CSRF token.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from set2tracks.auth.views import protect_from_csrf
from set2tracks.errors import InvalidInput
from set2tracks.perimeter import reject_nul_bytes
from set2tracks.sets import submissions
from set2tracks.sets.submissions import ReceivedFile, Submitted, clean_upload_name

FILE_FIELD = "file"
# What a form's checkbox or an API client may send for "yes"; anything else is "no".
# "y" is what the page's checkbox sends (WTForms' default value).
TRUE_VALUES = frozenset({"1", "true", "on", "yes", "y"})
# Room for the form's other fields (CSRF token, options) and the multipart boundaries; the
# file itself is held to UPLOAD_MAX_BYTES exactly, by the sink.
FORM_ALLOWANCE = 64 * 1024
READ_SIZE = 64 * 1024
# What the decoder may hold between reads: a read's worth plus what it kept back (a part's
# headers, the bytes that might start a boundary). Fields are held to FORM_ALLOWANCE.
DECODER_BUFFER = 4 * READ_SIZE
MAX_PARTS = 16  # the form has four fields; a body of thousands of tiny parts is not ours
NO_FILE_OR_LINK = "Send a recording in the field 'file', or a YouTube link in 'url'."
NO_FILE = "Choose the recording to upload."
ABSENT_CSRF_REASON = "The CSRF token is missing."  # Flask-WTF's words


def too_large_message() -> str:
    limit_mb = current_app.config["UPLOAD_MAX_BYTES"] / (1024 * 1024)
    return f"This file is too large: uploads may be at most {limit_mb:g} MB."


@dataclass(frozen=True)
class SubmitFields:
    """The submission form's fields other than the file, as page and API read them."""

    url: str
    notify: bool


def submit_fields(form: Mapping[str, str]) -> SubmitFields:
    """Read the submission form's ``url`` and ``notify`` fields."""
    return SubmitFields(
        url=form.get("url", "").strip(),
        notify=form.get("notify", "").strip().lower() in TRUE_VALUES,
    )


def submit_form(user_id: int, *, links: bool = True) -> Submitted:
    """Submit the request's form: an uploaded recording, or (with ``links``) a YouTube link.

    The page and the API both come here. The quota is checked, and a place in it held,
    before a byte of the body is read; raises 429, 413, 400 (CSRF, malformed form) or 422.
    """
    with submissions.upload_slot(user_id) as keep_alive:
        form, upload = receive_form(keep_alive)
    fields = submit_fields(form)
    url = fields.url if links else ""
    if upload is not None:
        if url:
            upload.path.unlink(missing_ok=True)
            raise InvalidInput("Send a file or a link, not both.", fields={"url": ["Not both."]})
        return submissions.submit_upload(user_id, upload, notify=fields.notify)
    if url:
        return submissions.submit_video(user_id, url, notify=fields.notify)
    message = NO_FILE_OR_LINK if links else NO_FILE
    raise InvalidInput(message, fields={"file": [message]})


class _Sink:
    """A file in ``UPLOAD_DIR`` that counts and hashes what is written into it."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()
        # O_EXCL: the random name is ours alone; 0600: uploads are nobody else's to read.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise RequestEntityTooLarge(too_large_message())
        self.digest.update(data)
        self.file.write(data)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def receive_form(
    keep_alive: Callable[[], None] = lambda: None,
) -> tuple[MultiDict[str, str], ReceivedFile | None]:
    """Parse the request's form, streaming its ``file`` part into ``UPLOAD_DIR``.

    Returns the other fields and the stored file (None when the form carries no file).
    ``keep_alive`` is called while the body arrives. The caller owns the file from here:
    ``submissions.submit_upload`` keeps or removes it. Raises 413 for a body over the
    limit, 400 for a malformed form or a missing or wrong CSRF token, leaving no file.
    """
    if request.mimetype != "multipart/form-data":
        # A URL-encoded body (a link) is read whole into memory: it keeps the app's small
        # limit, and its token is checked like any form's.
        form = request.form
        protect_from_csrf()
        reject_nul_bytes()
        return form, None
    config = current_app.config
    request.max_content_length = config["UPLOAD_MAX_BYTES"] + FORM_ALLOWANCE
    parser = _FormParser(Path(config["UPLOAD_DIR"]).absolute(), config["UPLOAD_MAX_BYTES"])
    try:
        fields = parser.parse(keep_alive)
        reject_nul_bytes()
        return fields, parser.received()
    except RequestEntityTooLarge as error:
        parser.discard()
        # werkzeug's own refusal (Content-Length over the limit) says nothing useful.
        raise RequestEntityTooLarge(too_large_message()) from error
    except BaseException:
        parser.discard()
        raise


class _FormParser:
    """One multipart body: its fields in memory, its one ``file`` part in a sink."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.fields: MultiDict[str, str] = MultiDict()
        self.sink: _Sink | None = None
        self.filename = ""

    def parse(self, keep_alive: Callable[[], None]) -> MultiDict[str, str]:
        boundary = request.mimetype_params.get("boundary", "")
        if not boundary:
            raise BadRequest("This multipart form has no boundary.")
        decoder = MultipartDecoder(
            boundary.encode("latin-1"), max_form_memory_size=DECODER_BUFFER, max_parts=MAX_PARTS
        )
        stream = request.stream
        field: str | None = None  # the text field being read, if any
        storing = False  # whether the part being read is the file we keep
        text = bytearray()
        form_size = 0
        checked = False
        try:
            while True:
                event = decoder.next_event()
                if isinstance(event, NeedData):
                    keep_alive()
                    decoder.receive_data(stream.read(READ_SIZE) or None)
                elif isinstance(event, Field):
                    field, storing = event.name, False
                    text.clear()
                elif isinstance(event, File):
                    field, storing = None, event.name == FILE_FIELD
                    if storing:
                        # The token must be known before the file costs a byte of disk.
                        self._check_csrf()
                        checked = True
                        self._open(event.filename)
                elif isinstance(event, Data):
                    if storing:
                        assert self.sink is not None
                        self.sink.write(event.data)
                    elif field is not None:
                        form_size += len(event.data)
                        if form_size > FORM_ALLOWANCE:
                            raise RequestEntityTooLarge()
                        text += event.data
                        if not event.more_data:
                            self.fields.add(field, text.decode("utf-8", "replace"))
                    # Other files' data is dropped unread into memory or disk.
                elif isinstance(event, Epilogue):
                    break
        except ValueError as error:  # the decoder's word for a body that is not a form
            raise BadRequest("The form could not be read: it is cut off or malformed.") from error
        if not checked:
            self._check_csrf()
        return self.fields

    def _open(self, filename: str) -> None:
        if self.sink is not None:
            raise BadRequest("Send one file per submission.")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sink = _Sink(self.directory / secrets.token_hex(16), self.limit)
        self.filename = filename

    def _check_csrf(self) -> None:
        """Hold a cookie session to its CSRF token, from the header or the fields so far."""
        # Flask-WTF reads the token from request.form: the fields read so far, and the whole
        # form once parsed, so that nothing later parses the body again.
        request.__dict__["form"] = self.fields
        request.__dict__["files"] = MultiDict()
        try:
            protect_from_csrf()
        except CSRFError as error:
            if error.description != ABSENT_CSRF_REASON:
                raise
            # Perhaps sent after the file: say where it must be.
            raise CSRFError(
                "The CSRF token is missing: send the csrf_token field before the file, or the"
                " X-CSRFToken header."
            ) from error

    def received(self) -> ReceivedFile | None:
        """Return the stored file, or None when the form carried none."""
        sink = self.sink
        if sink is None:
            return None
        sink.file.close()
        if sink.size == 0 and not self.filename:
            # A browser sends an empty part with no name when no file was chosen.
            sink.path.unlink(missing_ok=True)
            return None
        return ReceivedFile(
            path=sink.path,
            name=clean_upload_name(self.filename),
            sha256=sink.digest.hexdigest(),
            size=sink.size,
        )

    def discard(self) -> None:
        if self.sink is not None:
            self.sink.discard()
