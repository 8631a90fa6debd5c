"""Domain errors and the one place where every error becomes a response.

``/api`` answers ``application/problem+json`` (RFC 9457) with the request id; pages render
``templates/errors/<code>.html``. Nothing shows a traceback, a library's message, SQL or a
path: those go to the log, tagged with the same request id.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from set2tracks.extensions import db, login_manager
from set2tracks.logs import request_id as current_request_id

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PAGE_TEMPLATES = {400, 403, 404, 405, 413, 415, 429, 500, 503}
RETRY_AFTER_SECONDS = 30
# The last resort when even the error template cannot be rendered: no template, no database.
FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{status} {title}</title></head>
<body><h1>{status} · {title}</h1><p>{detail}</p>
<p>Reference: <code>{request_id}</code></p></body></html>
"""


class DomainError(Exception):
    """A rule of the product was broken; ``detail`` is safe to show to the person."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or {}


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class Unauthorized(DomainError):
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class TooManyRequests(DomainError):
    """A quota is used up; ``retry_after`` says in how many seconds trying again may work."""

    status = 429
    title = "Too many requests"

    def __init__(
        self, detail: str, *, retry_after: int, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(detail, fields=fields)
        self.retry_after = max(1, retry_after)


def wants_problem_json() -> bool:
    """Answer machines in problem+json: /api (but its HTML docs page) and the health probes."""
    if request.blueprint == "health":
        return True
    return request.path.startswith("/api/") and not request.path.startswith("/api/docs")


def error_response(
    status: int, title: str, detail: str, fields: dict[str, Any] | None = None
) -> Response:
    """Render an error as problem+json under ``/api`` and as a page everywhere else."""
    request_id = current_request_id()
    if wants_problem_json():
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": request_id,
        }
        if fields:
            body["errors"] = fields
        response = jsonify(body)
        response.mimetype = PROBLEM_JSON
    else:
        response = Response(_error_page(status, title, detail, request_id), mimetype="text/html")
    response.status_code = status
    if status == 401 and wants_problem_json():
        response.headers["WWW-Authenticate"] = 'Bearer realm="set2tracks"'
    if status in (429, 503):
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response


def _error_page(status: int, title: str, detail: str, request_id: str | None) -> str:
    """Render the page for ``status``, or the static fallback if rendering fails too."""
    template = f"errors/{status if status in PAGE_TEMPLATES else 'generic'}.html"
    try:
        return render_template(
            template, status=status, title=title, detail=detail, request_id=request_id
        )
    except Exception as error:
        if _unavailable(error):
            logger.error("error page rendered without templates: %s", type(error).__name__)
        else:
            logger.exception("error page %s could not be rendered", status)
        return FALLBACK_PAGE.format(
            status=status,
            title=html.escape(title),
            detail=html.escape(detail),
            request_id=html.escape(request_id or ""),
        )


def _as_anonymous() -> None:
    """Show the error page to an anonymous visitor: loading the user needs the database."""
    g._login_user = login_manager.anonymous_user()


def _rollback() -> None:
    try:
        db.session.rollback()
    except SQLAlchemyError:
        # The connection is gone with the server: drop the session rather than fail again.
        db.session.remove()


def _unavailable(error: BaseException) -> bool:
    return isinstance(error, (RedisError, OperationalError)) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def handle_domain_error(error: DomainError) -> Response:
    response = error_response(error.status, error.title, error.detail, error.fields)
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def handle_http_exception(error: HTTPException) -> Response:
    if isinstance(error, InternalServerError) and error.original_exception is not None:
        # Raised outside the view (opening the session, say): same treatment as in a view.
        return handle_unexpected(error)
    status = error.code or 500
    # flask-smorest/webargs put field errors in ``data["messages"]`` on a 422.
    fields = getattr(error, "data", {}).get("messages")
    response = error_response(status, error.name, error.description or error.name, fields)
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def handle_unexpected(error: Exception) -> Response:
    original = error.original_exception if isinstance(error, InternalServerError) else error
    _rollback()
    if original is not None and _unavailable(original):
        logger.error("dependency unavailable: %s", type(original).__name__)
        # A user loaded before the failure is expired by the rollback: touching it would
        # query the database again.
        _as_anonymous()
        return error_response(
            503,
            "Service unavailable",
            "A service this page needs is not answering. Please try again shortly.",
        )
    logger.exception("unhandled error", exc_info=original)
    return error_response(
        500, "Internal server error", "Something went wrong on our side. It has been logged."
    )


def init_errorhandlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
