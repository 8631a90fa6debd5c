"""Extension objects, created unbound; the app factory binds them with ``init_extensions``."""

import ipaddress
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from cachelib import FileSystemCache
from flask import Flask, Request, Response, current_app, g, request
from flask.sessions import SessionInterface, SessionMixin
from flask_caching import Cache
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name, get_remote_address
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf import CSRFProtect
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable

from set2tracks.database import Base, enable_sqlite_pragmas

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()


def _signed_in() -> bool:
    """Whether the requester is signed in; False while the database cannot tell.

    The limiter asks first, before any view: a database error here would pass for a broken
    limiter storage (fallback to memory, a swallowed traceback). The view meets the same
    error and answers 503.
    """
    try:
        return bool(current_user and current_user.is_authenticated)
    except SQLAlchemyError:
        db.session.rollback()
        return False


def rate_limit_key() -> str:
    """Count signed-in people by account and everyone else by client address."""
    if _signed_in():
        # The id, never get_id(): that is the session token, a credential (keys reach logs).
        return f"user:{current_user.id}"
    return f"ip:{client_address_key()}"


def client_address_key() -> str:
    """Return the client's address as budgets count it: IPv4 as is, IPv6 by its /64.

    One IPv6 client usually holds a whole /64: counting its addresses one by one would give
    it endless budgets.
    """
    address = get_remote_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def default_rate_limit() -> str:
    """Return the default limit for the requester: signed-in accounts get more room."""
    signed_in = _signed_in()
    limit: str = current_app.config[
        "RATELIMIT_AUTHENTICATED" if signed_in else "RATELIMIT_ANONYMOUS"
    ]
    return limit


V = TypeVar("V", bound=Callable[..., Any])


class AppLimiters:
    """Rate limits declared once at import, enforced in each app by a Limiter of its own.

    A Flask-Limiter object keeps the switch, storage and settings of the last app it was bound
    to, so one object shared by several apps (the tests build many) would let the last app's
    settings decide for all of them. Here routes declare their limits as with Flask-Limiter;
    ``init_app`` builds the app's own Limiter and gives it those limits. Any other attribute is
    the current app's Limiter's.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._filters: list[Callable[[], bool]] = []
        self._views: dict[str, tuple[Callable[..., Any], list[tuple[Any, dict[str, Any]]]]] = {}

    def limit(self, limit_value: Any, **options: Any) -> Callable[[V], V]:
        """Declare a limit on a view, as ``Limiter.limit`` does."""

        def declare(view: V) -> V:
            declared = getattr(view, "s2t_rate_limits", None)
            if declared is not None:
                # Another limit on a view that a first declaration already wraps.
                declared.append((limit_value, options))
                return view
            name = get_qualified_name(view)
            limits = [(limit_value, options)]
            self._views[name] = (view, limits)

            @wraps(view)
            def limited(*args: Any, **kwargs: Any) -> Any:
                return current_app.extensions["s2t_limited_views"][name](*args, **kwargs)

            limited.s2t_rate_limits = limits  # type: ignore[attr-defined]
            return cast(V, limited)

        return declare

    def request_filter(self, fn: Callable[[], bool]) -> Callable[[], bool]:
        """Exempt every request for which ``fn`` answers true, in every app."""
        self._filters.append(fn)
        return fn

    def init_app(self, app: Flask) -> Limiter:
        """Build and bind ``app``'s own Limiter, with every declared limit."""
        app_limiter = Limiter(**self._options)
        for request_filter in self._filters:
            app_limiter.request_filter(request_filter)
        app_limiter.init_app(app)
        limited_views: dict[str, Callable[..., Any]] = {}
        for name, (view, limits) in self._views.items():
            for limit_value, options in limits:
                view = app_limiter.limit(limit_value, **options)(view)
            limited_views[name] = view
        app.extensions["s2t_limiter"] = app_limiter
        app.extensions["s2t_limited_views"] = limited_views
        return app_limiter

    def __getattr__(self, name: str) -> Any:
        return getattr(current_app.extensions["s2t_limiter"], name)


# One budget per client across the whole site; routes that need it declare stricter limits.
limiter = AppLimiters(key_func=rate_limit_key, application_limits=[default_rate_limit])
cors = CORS()
server_session = Session()
cache = Cache()
csrf = CSRFProtect()

logger = logging.getLogger(__name__)


# Short timeouts: a hung Redis must cost a request half a second, not a worker timeout.
REDIS_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 0.5,
    "socket_timeout": 0.5,
    "health_check_interval": 30,
}

NOT_RATE_LIMITED = frozenset(
    {"static", "docs.asset", "health.healthz", "health.readyz", "health.health"}
)

YOUTUBE_EMBED = "https://www.youtube-nocookie.com"
IMAGE_HOSTS = ["https://i.ytimg.com", "https://*.mzstatic.com", "https://i.scdn.co"]
MEDIA_HOSTS = ["https://*.itunes.apple.com", "https://p.scdn.co"]


def content_security_policy() -> dict[str, str | list[str]]:
    """Return the CSP: scripts only from this origin or with the per-request nonce."""
    return {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": ["'self'", "data:", *IMAGE_HOSTS],
        "media-src": ["'self'", *MEDIA_HOSTS],
        "frame-src": YOUTUBE_EMBED,
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


ANONYMOUS_CSRF_SALT = "set2tracks.anonymous-csrf"
# Bookkeeping that Flask-Session (permanence) and Flask-Login (freshness, client hash) write
# into any session: without a signed-in user it is not worth storing.
BOOKKEEPING_KEYS = frozenset({"_permanent", "_fresh", "_id"})


class GuardedSessionInterface(SessionInterface):
    """Flask-Session's interface, turning an unreachable store into a clean 503, and storing
    no session that holds nothing but bookkeeping and a CSRF token.

    Flask opens the session before routing, outside every error handler; a Redis error
    there would be a bare 500. Instead the request gets an empty, unsaved session and is
    refused with 503 before any view runs.

    A visitor opening the sign-in form needs a CSRF token, not a stored session: kept in a
    signed cookie instead (valid ``ANONYMOUS_CSRF_LIFETIME`` from when it was made), so
    anonymous requests cannot fill the store (the embedded file store keeps 500 sessions and
    evicts signed-in people to make room). Sign-in and sign-out drop the token.
    """

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        try:
            session = self.inner.open_session(app, request)
        except RedisError as error:
            logger.error("session store unavailable: %s", type(error).__name__)
            g.session_store_down = True
            return self.inner.make_null_session(app)
        if session is not None and not session:
            token = self._anonymous_csrf(app, request)
            if token is not None:
                session[csrf_key(app)] = token
                session.modified = False
                g.anonymous_csrf_token = token
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        csrf_token = session.get(csrf_key(app))
        if _worth_storing(app, session):
            if app.config["ANONYMOUS_CSRF_COOKIE_NAME"] in request.cookies:
                # The stored session holds the token from now on.
                response.delete_cookie(app.config["ANONYMOUS_CSRF_COOKIE_NAME"], path="/")
            self.inner.save_session(app, session, response)
            return
        # Stored as empty: none is created, and one stored before (say, until sign-out) goes.
        empty = self.inner.session_class(sid=getattr(session, "sid", None))  # type: ignore[attr-defined]
        empty.modified = request.cookies.get(self.get_cookie_name(app)) is not None
        self.inner.save_session(app, empty, response)
        if csrf_token is not None and csrf_token != g.get("anonymous_csrf_token"):
            self._set_csrf_cookie(app, response, csrf_token)

    def _serializer(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=ANONYMOUS_CSRF_SALT)

    def _set_csrf_cookie(self, app: Flask, response: Response, token: str) -> None:
        """Hand a newly made token to the browser, for the cookie's lifetime from now."""
        lifetime: timedelta = app.config["ANONYMOUS_CSRF_LIFETIME"]
        response.set_cookie(
            app.config["ANONYMOUS_CSRF_COOKIE_NAME"],
            str(self._serializer(app).dumps(token)),
            max_age=int(lifetime.total_seconds()),
            path="/",
            secure=app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )

    def _anonymous_csrf(self, app: Flask, request: Request) -> str | None:
        """Return the token of the visitor's CSRF cookie, unless forged or too old."""
        value = request.cookies.get(app.config["ANONYMOUS_CSRF_COOKIE_NAME"])
        if not value:
            return None
        lifetime: timedelta = app.config["ANONYMOUS_CSRF_LIFETIME"]
        try:
            token = self._serializer(app).loads(value, max_age=int(lifetime.total_seconds()))
        except BadSignature:  # also an expired one
            return None
        return token if isinstance(token, str) else None


def _worth_storing(app: Flask, session: SessionMixin) -> bool:
    """Whether a session holds anything but bookkeeping and a CSRF token (the cookie's job)."""
    return bool(set(session) - BOOKKEEPING_KEYS - {csrf_key(app)})


def csrf_key(app: Flask) -> str:
    """Return the session key (and form field name) of the CSRF token."""
    key: str = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    return key


def _refuse_without_session_store() -> None:
    if g.get("session_store_down"):
        raise ServiceUnavailable("Sessions are unavailable for a moment. Please try again.")


@limiter.request_filter
def _not_rate_limited() -> bool:
    # Static assets and health probes are cheap and must never be refused.
    return request.endpoint in NOT_RATE_LIMITED


def permissions_policy() -> dict[str, str]:
    """Return the Permissions-Policy: no powerful feature, the player's few for its embed."""
    player = f'(self "{YOUTUBE_EMBED}")'
    denied = ["camera", "microphone", "geolocation", "payment", "usb", "browsing-topics"]
    return {
        **dict.fromkeys(denied, "()"),
        **dict.fromkeys(
            ("autoplay", "encrypted-media", "fullscreen", "picture-in-picture"), player
        ),
    }


def talisman_options(**options: Any) -> Callable[[V], V]:
    """Override Talisman's settings for one view in every app (its ``talisman(...)`` decorator)."""

    def decorate(view: V) -> V:
        # Stored as Talisman reads them; a dict of its own per view, as Talisman writes in it.
        view.talisman_view_options = dict(options)  # type: ignore[attr-defined]
        return view

    return decorate


def _isolate_browsing_context(response: Response) -> Response:
    # Talisman has no setting for COOP; pages never need a cross-origin opener.
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response


def redis_client(app: Flask) -> Redis:
    """Return the app's Redis client (production profile only)."""
    client: Redis = app.extensions["s2t_redis"]
    return client


def init_extensions(app: Flask) -> None:
    """Bind every extension to ``app`` with the settings of its profile."""
    config = app.config
    enable_sqlite_pragmas()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))

    if config.get("REDIS_URL"):
        app.extensions["s2t_redis"] = Redis.from_url(config["REDIS_URL"], **REDIS_CLIENT_OPTIONS)

    if config["SESSION_TYPE"] == "redis":
        config.setdefault("SESSION_REDIS", redis_client(app))
    elif config["SESSION_TYPE"] == "cachelib":
        config.setdefault(
            "SESSION_CACHELIB", FileSystemCache(config["SESSION_FILE_DIR"], mode=0o600)
        )
    server_session.init_app(app)
    app.session_interface = GuardedSessionInterface(app.session_interface)
    app.before_request(_refuse_without_session_store)

    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    csrf.init_app(app)

    if config["RATELIMIT_STORAGE_URI"] == "redis":
        config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]
        config.setdefault("RATELIMIT_STORAGE_OPTIONS", dict(REDIS_CLIENT_OPTIONS))
    limiter.init_app(app)

    if config["CACHE_TYPE"] == "RedisCache":
        config.setdefault("CACHE_REDIS_URL", config["REDIS_URL"])
        config.setdefault("CACHE_OPTIONS", dict(REDIS_CLIENT_OPTIONS))
    config.setdefault("CACHE_KEY_PREFIX", "s2t-cache:")
    cache.init_app(app)

    # One Talisman per app: it keeps its settings (force_https...) on itself, not on the app.
    app.extensions["s2t_talisman"] = Talisman(
        app,
        force_https=config["FORCE_HTTPS"],
        strict_transport_security=config["FORCE_HTTPS"],
        strict_transport_security_include_subdomains=True,
        content_security_policy=content_security_policy(),
        content_security_policy_nonce_in=["script-src"],
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        permissions_policy=permissions_policy(),
        session_cookie_secure=config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
    )
    app.after_request(_isolate_browsing_context)
