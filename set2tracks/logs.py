"""JSON logging, request ids and the redaction of secrets.

Configured once per process for web and worker alike. Every line is one JSON object with a
UTC timestamp; lines logged while a request is handled carry its request id, route and user.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask_login import current_user
from pythonjsonlogger.json import JsonFormatter

from set2tracks.config import config_warnings

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_HANDLER_NAME = "set2tracks"

# Values following these names never reach a log line, whatever the message looks like.
_SECRET_NAMES = r"password|passwd|secret|token|api[_-]?key|authorization|cookie|session|invite"  # noqa: S105
_SECRET_ASSIGNMENT = re.compile(
    rf"(?i)((?:{_SECRET_NAMES})[\w-]*[\"']?\s*[:=]\s*[\"']?)(?:(?:Bearer|Basic)\s+)?"
    r"[^\s\"',;&}]+"
)
_BEARER = re.compile(r"(?i)(Bearer\s+)[A-Za-z0-9._~+/=-]+")
_BASIC = re.compile(r"(?i)\b(Basic\s+)([A-Za-z0-9+/]{4,}={0,2})")
# A Cookie or Set-Cookie header: every value in it, not only the first one.
_COOKIE_HEADER = re.compile(r"(?i)(\b(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)([^\"'\r\n]+)")
# Our API tokens wherever they appear (TOKEN_PREFIX in auth/services.py).
_API_TOKEN = re.compile(r"\bs2t_[A-Za-z0-9_-]{20,}")
# The secret segment of reset and invite links (the route's own "<token>" is no secret).
_SECRET_PATH = re.compile(r"(/(?:reset-password|invite)/)(?!<)[^\s/?#\"'<>]+")
# Query parameters of the links we send that carry a secret (?invite=CODE, ?code=...,
# ?confirm=...): in any URL a line quotes, whatever logged it (the access line has no query).
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:invite|code|confirm)[\w-]*=)[^&#;\s\"'<>]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+(@)")
_SECRET_KEY = re.compile(rf"(?i)^({_SECRET_NAMES}|.*_(key|secret|token|password))$")
REDACTED = "[redacted]"
_TRACEBACKS = logging.Formatter()


# URL variables that carry a secret: the access line shows the route rule instead of the path.
SECRET_URL_VARIABLES = frozenset({"token", "code"})


def redact(text: str) -> str:
    """Mask secrets in free text: assignments, credentials, cookies, tokens, secret links."""
    text = _COOKIE_HEADER.sub(_redact_cookies, text)
    text = _BASIC.sub(_redact_basic, text)
    text = _SECRET_ASSIGNMENT.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _API_TOKEN.sub(REDACTED, text)
    text = _SECRET_PATH.sub(rf"\g<1>{REDACTED}", text)
    text = _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", text)
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", text)


def _redact_cookies(match: re.Match[str]) -> str:
    parts = []
    for part in match.group(2).split(";"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if equals else f" {REDACTED}")
    return match.group(1) + ";".join(parts)


def _redact_basic(match: re.Match[str]) -> str:
    # Only real credentials ("user:password" in base64), not the English word "basic".
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return f"{match.group(1)}{REDACTED}" if b":" in decoded else match.group(0)


class RedactingFilter(logging.Filter):
    """Render the message, then scrub it and every extra field that looks secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            # Exception messages quote what they choke on: render the traceback now, scrubbed.
            record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD_ATTRIBUTES:
                continue
            if _SECRET_KEY.match(key):
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class RequestContextFilter(logging.Filter):
    """Tag records logged during a request with its id, route and user."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (job := _current_job.get()) is not None:
            record.job_id, record.request_id = job
        elif has_request_context():
            record.request_id = request_id()
            record.route = request.url_rule.rule if request.url_rule else None
            user = current_user if g.get("_login_user") is not None else None
            record.user_id = getattr(user, "id", None)
        return True


# (job id, id of the request that enqueued it) while a job runs in this thread or process.
_current_job: ContextVar[tuple[str, str | None] | None] = ContextVar("job", default=None)


@contextmanager
def job_logging(job_id: str, enqueued_by: str | None) -> Iterator[None]:
    """Tag every log line written while a job runs with its id and its request's id."""
    token = _current_job.set((job_id, enqueued_by))
    try:
        yield
    finally:
        _current_job.reset(token)


def current_job_id() -> str | None:
    """Return the id of the job running in this thread or process, if any."""
    current = _current_job.get()
    return current[0] if current else None


_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def init_logging(app: Flask) -> None:
    """Send JSON lines to stderr (once per process) and track request ids and timings."""
    root = logging.getLogger()
    if not any(handler.get_name() == _HANDLER_NAME for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp=True,
            )
        )
        handler.addFilter(RequestContextFilter())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    app.logger.handlers.clear()
    app.logger.propagate = True
    app.before_request(_start_request)
    app.after_request(_finish_request)
    for warning in config_warnings(app.config):
        logger.warning("configuration: %s", warning)


def request_id() -> str | None:
    """Return the id of the request being handled (the client's, if well formed), if any."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    current: str = g.request_id
    return current


def _start_request() -> None:
    request_id()
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id() or ""
    started: Any = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    logging.getLogger("set2tracks.access").info(
        "%s %s %s",
        request.method,
        _logged_path(),
        response.status_code,
        extra={
            "method": request.method,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
    return response


def _logged_path() -> str:
    """Return the request's path, or its route rule when the path carries a secret."""
    rule = request.url_rule
    if rule is not None and SECRET_URL_VARIABLES & rule.arguments:
        return rule.rule
    return request.path
