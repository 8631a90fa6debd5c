"""Configuration: the only module that reads the environment.

Two profiles (see DESIGN.md): the embedded default, which works with no environment at
all (SQLite, in-process jobs, in-memory limits and cache), and production
(``SET2TRACKS_ENV=production``: PostgreSQL, Redis, RQ workers). Every variable is parsed
lazily and validated all at once, so a bad deployment learns about every mistake in one
error instead of one per restart.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from environs import Env, EnvValidationError
from marshmallow import ValidationError
from marshmallow.validate import Email, OneOf, Range
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PRODUCTION = "production"
EMBEDDED = "embedded"
SIGNUP_MODES = ("open", "invite", "closed")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MIN_SECRET_KEY_LENGTH = 32
MIN_HEALTH_TOKEN_LENGTH = 32
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)

_REQUIRED_IN_PRODUCTION = {
    "SECRET_KEY": (
        f"required in production (a random string of at least {MIN_SECRET_KEY_LENGTH} characters)"
    ),
    "DATABASE_URL": "required in production (postgresql://user:password@host:5432/dbname)",
    "REDIS_URL": "required in production (redis://host:6379/0)",
}


class ConfigError(click.ClickException):
    """The environment cannot run the app; the message names every offending variable.

    A ``ClickException`` so that the ``flask`` CLI prints it as one clean ``Error:`` line
    and exits non-zero instead of dumping a traceback.
    """

    exit_code = 2

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        if len(self.problems) == 1:
            ((name, why),) = self.problems.items()
            super().__init__(f"invalid configuration: {name}: {why}")
            return
        lines = [f"  {name}: {why}" for name, why in sorted(self.problems.items())]
        super().__init__(
            "invalid configuration, fix these environment variables:\n" + "\n".join(lines)
        )


def _check(predicate: Callable[[Any], bool], message: str) -> Callable[[Any], None]:
    def validate(value: Any) -> None:
        if not predicate(value):
            raise ValidationError(message)

    return validate


def _database_url(value: str) -> str:
    """Parse a database URL, normalising Heroku's ``postgres://`` to the psycopg 3 driver."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValidationError(
            "not a database URL (expected postgresql://user:password@host:5432/dbname)"
        ) from None
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if not url.host or not url.database:
            raise ValidationError("a PostgreSQL URL needs a host and a database name")
        url = url.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ValidationError(f"unsupported database {backend!r} (use postgresql or sqlite)")
    return url.render_as_string(hide_password=False)


def _redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValidationError("not a Redis URL (expected redis://host:6379/0 or rediss://...)")
    return value


def _origin(value: str) -> bool:
    parts = urlsplit(value)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not parts.query
        and not parts.fragment
    )


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _public_site_url(value: str) -> bool:
    """Whether links to this site are safe to email: https, or a loopback address."""
    parts = urlsplit(value)
    return parts.scheme == "https" or parts.hostname in LOOPBACK_HOSTS


def _smtp_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("smtp", "smtps", "smtp+starttls") and bool(parts.hostname)


def load_config(
    instance_path: str | os.PathLike[str], *, read_dotenv: bool = True
) -> dict[str, Any]:
    """Read and validate the environment into Flask settings, raising one ``ConfigError``."""
    env = Env(eager=False)
    if read_dotenv:
        env.read_env(".env", recurse=False)
    instance = Path(instance_path)

    profile_raw = env.str("SET2TRACKS_ENV", "")
    production = profile_raw == PRODUCTION
    problems: dict[str, str] = {}
    if profile_raw not in ("", PRODUCTION):
        problems["SET2TRACKS_ENV"] = f"must be {PRODUCTION!r} or unset, not {profile_raw!r}"

    secret_key = env.str(
        "SECRET_KEY",
        None,
        validate=_check(
            lambda v: len(v) >= MIN_SECRET_KEY_LENGTH,
            f"too short: use at least {MIN_SECRET_KEY_LENGTH} random characters",
        ),
    )
    database_url = env.str("DATABASE_URL", None, validate=_database_url)
    redis_url = env.str("REDIS_URL", None, validate=_redis_url)
    force_https = env.bool("FORCE_HTTPS", production)
    signup_mode = env.str(
        "SIGNUP_MODE", "invite" if production else "open", validate=OneOf(SIGNUP_MODES)
    )
    cors_origins = env.list(
        "CORS_ORIGINS",
        [],
        subcast=str.strip,
        validate=_check(
            lambda values: all(_origin(v) for v in values),
            "each origin must look like https://example.com (scheme and host, no path)",
        ),
    )
    upload_dir = env.path("UPLOAD_DIR", instance / "uploads")
    # The own-library index's segment files; every worker must read the same directory.
    fingerprint_dir = env.path("FINGERPRINT_DIR", instance / "fingerprints")
    port = env.int("PORT", 5000, validate=Range(1, 65535))
    web_concurrency = env.int("WEB_CONCURRENCY", 2, validate=Range(1, 64))
    log_level = env.str(
        "LOG_LEVEL",
        "INFO",
        validate=_check(
            lambda v: v.upper() in LOG_LEVELS, f"must be one of {', '.join(LOG_LEVELS)}"
        ),
    )
    proxy_x_for = env.int("PROXY_FIX_X_FOR", 1 if production else 0, validate=Range(0, 5))
    proxy_x_proto = env.int("PROXY_FIX_X_PROTO", 1 if production else 0, validate=Range(0, 5))
    site_url = env.str(
        "SITE_URL",
        None,
        validate=_check(
            lambda v: not v or _http_url(v),
            "must be an http(s) URL such as https://example.com (no query or fragment)",
        ),
    )
    # Lets a monitor read /health without an admin account (sent as a Bearer token).
    health_token = env.str(
        "HEALTH_TOKEN",
        None,
        validate=_check(
            lambda v: not v or len(v) >= MIN_HEALTH_TOKEN_LENGTH,
            f"too short: use at least {MIN_HEALTH_TOKEN_LENGTH} random characters",
        ),
    )
    job_timeout = env.int("JOB_TIMEOUT", 45 * 60, validate=Range(30, 6 * 3600))
    smtp_url = env.str(
        "SMTP_URL",
        None,
        validate=_check(
            lambda v: not v or _smtp_url(v), "must look like smtp://user:password@host:587"
        ),
    )
    mail_from = env.str(
        "MAIL_FROM",
        "Set2Tracks <noreply@localhost>",
        validate=_check(_valid_sender, "must be an email address, optionally as 'Name <address>'"),
    )
    flask_debug = env.bool("FLASK_DEBUG", False)
    # Submissions and the processing job (DESIGN.md, "The pipeline").
    upload_max_mb = env.int("UPLOAD_MAX_MB", 600, validate=Range(1, 10_000))
    upload_min_seconds = env.int("UPLOAD_MIN_SECONDS", 30, validate=Range(5, 3600))
    set_max_seconds = env.int("SET_MAX_SECONDS", 6 * 3600, validate=Range(60, 24 * 3600))
    submissions_per_hour = env.int("SUBMISSIONS_PER_HOUR", 10, validate=Range(1, 10_000))
    active_submissions = env.int("ACTIVE_SUBMISSIONS", 3, validate=Range(1, 1000))
    premium_submissions_per_hour = env.int(
        "PREMIUM_SUBMISSIONS_PER_HOUR", 50, validate=Range(1, 10_000)
    )
    premium_active_submissions = env.int("PREMIUM_ACTIVE_SUBMISSIONS", 10, validate=Range(1, 1000))
    max_attempts = env.int("MAX_ATTEMPTS", 4, validate=Range(1, 20))
    retry_base_seconds = env.int("RETRY_BASE_SECONDS", 30, validate=Range(1, 3600))
    # Per-job temporary folders (downloads, decoded PCM); leftovers over a day old are swept.
    work_dir = env.path("WORK_DIR", instance / "work")
    # The music services (issue 11): YouTube, Shazam, Spotify, Apple Music.
    # SET2TRACKS_FAKE_SERVICES swaps all four for the offline fakes the tests use (a demo).
    fake_services = env.bool("SET2TRACKS_FAKE_SERVICES", False)
    youtube_min_seconds = env.int("YOUTUBE_MIN_SECONDS", 15 * 60, validate=Range(60, 6 * 3600))
    youtube_max_seconds = env.int("YOUTUBE_MAX_SECONDS", 6 * 3600, validate=Range(60, 24 * 3600))
    shazam_per_minute = env.int("SHAZAM_PER_MINUTE", 10, validate=Range(1, 600))
    spotify_client_id = env.str("SPOTIFY_CLIENT_ID", None)
    spotify_client_secret = env.str("SPOTIFY_CLIENT_SECRET", None)
    apple_team_id = env.str("APPLE_TEAM_ID", None)
    apple_key_id = env.str("APPLE_KEY_ID", None)
    apple_private_key = env.str("APPLE_PRIVATE_KEY", None)  # the .p8 key's PEM text
    apple_storefront = env.str(
        "APPLE_STOREFRONT",
        "us",
        validate=_check(
            lambda v: bool(re.fullmatch(r"[a-z]{2}", v)), "a two-letter country code such as us"
        ),
    )
    min_identified_tracks = env.int("MIN_IDENTIFIED_TRACKS", 5, validate=Range(1, 100))
    channel_crawl_minutes = env.int("CHANNEL_CRAWL_MINUTES", 30, validate=Range(5, 24 * 60))

    try:
        env.seal()
    except EnvValidationError as error:
        for name, messages in dict(error.error_messages).items():  # type: ignore[arg-type]
            problems[name] = "; ".join(m for m in messages if m) or "invalid value"

    if production:
        given = {"SECRET_KEY": secret_key, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        for name, why in _REQUIRED_IN_PRODUCTION.items():
            if not given[name] and name not in problems:
                problems[name] = why
        if (
            database_url
            and "DATABASE_URL" not in problems
            and not _database_url(database_url).startswith("postgresql")
        ):
            problems["DATABASE_URL"] = "production needs PostgreSQL, not SQLite"
        if flask_debug:
            problems["FLASK_DEBUG"] = "debug mode must be off in production"
        if fake_services:
            problems["SET2TRACKS_FAKE_SERVICES"] = (
                "the offline fakes are for demos and tests; production talks to the real services"
            )
        if "SITE_URL" not in problems:
            if not site_url:
                # Reset and invite links must never be built from a Host header a client sent.
                problems["SITE_URL"] = (
                    "required in production: the public https address, e.g. https://example.com"
                )
            elif not _public_site_url(site_url):
                problems["SITE_URL"] = "must use https in production (http only for localhost)"
    if problems:
        raise ConfigError(problems)

    database_uri = (
        _database_url(database_url)
        if database_url
        else f"sqlite:///{(instance / 'set2tracks.db').resolve()}"
    )
    settings: dict[str, Any] = {
        "SET2TRACKS_ENV": PRODUCTION if production else EMBEDDED,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "REDIS_URL": redis_url if production else None,
        "FORCE_HTTPS": force_https,
        "SIGNUP_MODE": signup_mode,
        "CORS_ORIGINS": cors_origins,
        "UPLOAD_DIR": str(upload_dir),
        "FINGERPRINT_DIR": str(fingerprint_dir),
        "PORT": port,
        "WEB_CONCURRENCY": web_concurrency,
        "LOG_LEVEL": log_level.upper(),
        "PROXY_FIX_X_FOR": proxy_x_for,
        "PROXY_FIX_X_PROTO": proxy_x_proto,
        "SITE_URL": site_url.rstrip("/") if site_url else None,
        "HEALTH_TOKEN": health_token or None,
        "JOB_TIMEOUT": job_timeout,
        "SMTP_URL": smtp_url or None,
        "MAIL_FROM": mail_from,
        "UPLOAD_MAX_BYTES": upload_max_mb * 1024 * 1024,
        "UPLOAD_MIN_SECONDS": upload_min_seconds,
        "SET_MAX_SECONDS": set_max_seconds,
        "SUBMISSIONS_PER_HOUR": submissions_per_hour,
        "ACTIVE_SUBMISSIONS": active_submissions,
        "PREMIUM_SUBMISSIONS_PER_HOUR": premium_submissions_per_hour,
        "PREMIUM_ACTIVE_SUBMISSIONS": premium_active_submissions,
        "MAX_ATTEMPTS": max_attempts,
        "RETRY_BASE_SECONDS": retry_base_seconds,
        "WORK_DIR": str(work_dir),
        "FAKE_SERVICES": fake_services,
        "YOUTUBE_MIN_SECONDS": youtube_min_seconds,
        "YOUTUBE_MAX_SECONDS": youtube_max_seconds,
        "SHAZAM_PER_MINUTE": shazam_per_minute,
        "SPOTIFY_CLIENT_ID": spotify_client_id or None,
        "SPOTIFY_CLIENT_SECRET": spotify_client_secret or None,
        "APPLE_TEAM_ID": apple_team_id or None,
        "APPLE_KEY_ID": apple_key_id or None,
        "APPLE_PRIVATE_KEY": apple_private_key or None,
        "APPLE_STOREFRONT": apple_storefront,
        "MIN_IDENTIFIED_TRACKS": min_identified_tracks,
        "CHANNEL_CRAWL_MINUTES": channel_crawl_minutes,
    }
    settings.update(_profile_settings(production, instance))
    return settings


def _valid_sender(value: str) -> bool:
    address = value.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in value else value
    try:
        Email()(address)
    except ValidationError:
        return address.endswith("@localhost")
    return True


def _profile_settings(production: bool, instance: Path) -> dict[str, Any]:
    """Return the settings that follow from the profile rather than from a variable."""
    common: dict[str, Any] = {
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": timedelta(days=30),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        # However often it is refreshed, a sign-in (session or remember cookie) ends here.
        "SESSION_ABSOLUTE_LIFETIME": timedelta(days=30),
        "SESSION_PERMANENT": True,
        "SESSION_KEY_PREFIX": "s2t-session:",
        "RATELIMIT_KEY_PREFIX": "s2t-rl",
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        # The IETF RateLimit header names rather than the older X-RateLimit-*.
        "RATELIMIT_HEADER_LIMIT": "RateLimit-Limit",
        "RATELIMIT_HEADER_REMAINING": "RateLimit-Remaining",
        "RATELIMIT_HEADER_RESET": "RateLimit-Reset",
        "RATELIMIT_ANONYMOUS": "120 per minute;2000 per hour",
        "RATELIMIT_AUTHENTICATED": "600 per minute;10000 per hour",
        # A signed-in session's CSRF token lives as long as the session; an anonymous
        # visitor's (a cookie: nothing is stored for visitors) this long from when it was made.
        "WTF_CSRF_TIME_LIMIT": None,
        "ANONYMOUS_CSRF_LIFETIME": timedelta(hours=12),
        # CSRF is checked by set2tracks.auth for cookie requests only (API tokens need none).
        "WTF_CSRF_CHECK_DEFAULT": False,
        "PASSWORD_RESET_MAX_AGE": 30 * 60,
        "EMAIL_CONFIRMATION_MAX_AGE": 2 * 24 * 3600,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 64 * 1024,
        "MAX_FORM_PARTS": 50,
        "JSON_SORT_KEYS": False,
    }
    if production:
        return common | {
            "JOB_RUNNER": "rq",
            "SESSION_TYPE": "redis",
            "SESSION_COOKIE_NAME": "__Host-session",
            "SESSION_COOKIE_SECURE": True,
            "REMEMBER_COOKIE_NAME": "__Host-remember",
            "REMEMBER_COOKIE_SECURE": True,
            "ANONYMOUS_CSRF_COOKIE_NAME": "__Host-csrf",
            "DEVICE_COOKIE_NAME": "__Host-device",
            "RATELIMIT_STORAGE_URI": "redis",  # resolved to REDIS_URL by the extension setup
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
            "RATELIMIT_SWALLOW_ERRORS": True,
            "CACHE_TYPE": "RedisCache",
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_pre_ping": True,
                "pool_timeout": 2,
                "connect_args": {
                    "connect_timeout": 2,
                    "options": "-c statement_timeout=15000"
                    " -c idle_in_transaction_session_timeout=60000",
                },
            },
        }
    return common | {
        "JOB_RUNNER": "inline",
        "SESSION_TYPE": "cachelib",
        "SESSION_FILE_DIR": str(instance / "sessions"),
        "SESSION_COOKIE_NAME": "s2t_session",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_NAME": "s2t_remember",
        "REMEMBER_COOKIE_SECURE": False,
        "ANONYMOUS_CSRF_COOKIE_NAME": "s2t_csrf",
        "DEVICE_COOKIE_NAME": "s2t_device",
        "RATELIMIT_STORAGE_URI": "memory://",
        "CACHE_TYPE": "SimpleCache",
        "SQLALCHEMY_ENGINE_OPTIONS": {},
    }


def redis_url_unprotected(url: str) -> bool:
    """Whether a Redis URL has neither a password nor TLS: anyone on its network may use it."""
    parts = urlsplit(url)
    if parts.scheme in ("rediss", "unix"):
        return False  # TLS, or a local socket guarded by file permissions
    return not parts.password and "password=" not in parts.query


def config_warnings(settings: Mapping[str, Any]) -> list[str]:
    """Return what is allowed but unsafe in ``settings``, for the log at start-up."""
    found = []
    redis_url = settings.get("REDIS_URL")
    production = settings.get("SET2TRACKS_ENV") == PRODUCTION
    if production and redis_url and redis_url_unprotected(redis_url):
        found.append(
            "REDIS_URL has no password and no TLS: whoever reaches Redis can read sessions"
            " and queue jobs; use rediss:// (TLS) or give the URL a password"
        )
    return found


def persistent_secret_key(instance_path: str | os.PathLike[str]) -> str:
    """Return the embedded profile's secret key, generating it once in ``instance/``."""
    path = Path(instance_path) / SECRET_KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        # O_EXCL: two processes starting together agree on the first key written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
