"""Configuration: the embedded default works with nothing set; production refuses to start
unless every variable is right, and says everything that is wrong at once."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from set2tracks import create_app
from set2tracks.config import (
    ConfigError,
    load_config,
    persistent_secret_key,
    redis_url_unprotected,
)
from tests.backends import Backends
from tests.conftest import base_config

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = [
    "SET2TRACKS_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "FORCE_HTTPS",
    "SIGNUP_MODE",
    "CORS_ORIGINS",
    "UPLOAD_DIR",
    "PORT",
    "WEB_CONCURRENCY",
    "LOG_LEVEL",
    "PROXY_FIX_X_FOR",
    "PROXY_FIX_X_PROTO",
    "SITE_URL",
    "HEALTH_TOKEN",
    "JOB_TIMEOUT",
    "SMTP_URL",
    "MAIL_FROM",
    "FLASK_DEBUG",
]
GOOD_PRODUCTION = {
    "SET2TRACKS_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "DATABASE_URL": "postgres://app:pw@db.internal:5432/set2tracks",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SITE_URL": "https://set2tracks.example",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An empty environment (as far as Set2Tracks reads it), in a directory with no .env."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def production(env: pytest.MonkeyPatch, **changes: str | None) -> dict[str, object]:
    for name, value in (GOOD_PRODUCTION | changes).items():
        if value is None:
            env.delenv(name, raising=False)
        else:
            env.setenv(name, value)
    return load_config("instance")


def problems(env: pytest.MonkeyPatch, **changes: str | None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        production(env, **changes)
    return caught.value.problems


def test_embedded_default_needs_no_environment(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_config(tmp_path / "instance")

    assert settings["SET2TRACKS_ENV"] == "embedded"
    assert (
        settings["SQLALCHEMY_DATABASE_URI"]
        == f"sqlite:///{tmp_path / 'instance' / 'set2tracks.db'}"
    )
    assert settings["JOB_RUNNER"] == "inline"
    assert settings["RATELIMIT_STORAGE_URI"] == "memory://"
    assert settings["CACHE_TYPE"] == "SimpleCache"
    assert settings["SESSION_TYPE"] == "cachelib"
    assert settings["REDIS_URL"] is None
    assert settings["FORCE_HTTPS"] is False
    assert settings["PORT"] == 5000


def test_embedded_profile_reads_a_dotenv_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=5055\nSIGNUP_MODE=closed\n")

    settings = load_config(tmp_path / "instance")

    assert settings["PORT"] == 5055
    assert settings["SIGNUP_MODE"] == "closed"


def test_production_with_empty_environment_names_all_required_variables(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("SET2TRACKS_ENV", "production")

    with pytest.raises(ConfigError) as caught:
        load_config("instance")

    assert set(caught.value.problems) == {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SITE_URL"}
    message = caught.value.format_message()
    assert "SECRET_KEY" in message
    assert "DATABASE_URL" in message
    assert "REDIS_URL" in message


def test_production_settings(env: pytest.MonkeyPatch) -> None:
    settings = production(env)

    assert settings["SET2TRACKS_ENV"] == "production"
    # Heroku's postgres:// becomes the psycopg 3 driver URL.
    assert settings["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://app:pw@db.internal:5432/set2tracks"
    )
    assert settings["REDIS_URL"] == "redis://cache.internal:6379/0"
    assert settings["JOB_RUNNER"] == "rq"
    assert settings["SESSION_TYPE"] == "redis"
    assert settings["FORCE_HTTPS"] is True
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_NAME"] == "__Host-session"
    assert settings["SIGNUP_MODE"] == "invite"
    assert settings["PROXY_FIX_X_FOR"] == 1


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SECRET_KEY", "short", "at least 32"),
        ("DATABASE_URL", "not a url", "not a database URL"),
        ("DATABASE_URL", "mysql://u@h/db", "unsupported database"),
        ("DATABASE_URL", "sqlite:////tmp/x.db", "needs PostgreSQL"),
        ("DATABASE_URL", "postgresql://user@/nodb", "needs a host"),
        ("REDIS_URL", "http://cache:6379", "not a Redis URL"),
        ("PORT", "eighty", "integer"),
        ("PORT", "70000", "greater than or equal"),
        ("WEB_CONCURRENCY", "0", "greater than or equal"),
        ("FORCE_HTTPS", "maybe", "boolean"),
        ("SIGNUP_MODE", "everyone", "Must be one of"),
        ("LOG_LEVEL", "LOUD", "must be one of"),
        ("CORS_ORIGINS", "https://ok.example,https://bad.example/path", "scheme and host"),
        ("SITE_URL", "ftp://set2tracks.example", "http(s) URL"),
        ("HEALTH_TOKEN", "short", "at least 32"),
        ("SMTP_URL", "mail.example.com:25", "smtp://"),
        ("MAIL_FROM", "Set2Tracks <not-an-email>", "email address"),
        ("JOB_TIMEOUT", "5", "greater than or equal"),
        ("PROXY_FIX_X_FOR", "-1", "greater than or equal"),
        ("FLASK_DEBUG", "1", "debug mode must be off"),
        ("SET2TRACKS_ENV", "staging", "must be 'production' or unset"),
    ],
)
def test_each_invalid_variable_is_named_with_its_reason(
    env: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    found = problems(env, **{name: value})

    assert name in found
    assert expected in found[name]


def test_every_problem_is_reported_in_one_error(env: pytest.MonkeyPatch) -> None:
    found = problems(
        env, SECRET_KEY=None, DATABASE_URL="sqlite://", PORT="x", SIGNUP_MODE="all", FORCE_HTTPS="?"
    )

    assert set(found) == {"SECRET_KEY", "DATABASE_URL", "PORT", "SIGNUP_MODE", "FORCE_HTTPS"}


def test_valid_optional_variables_are_parsed(env: pytest.MonkeyPatch) -> None:
    settings = production(
        env,
        CORS_ORIGINS="https://www.youtube.com, http://localhost:3000",
        LOG_LEVEL="warning",
        SMTP_URL="",
        FORCE_HTTPS="false",
        MAIL_FROM="Set2Tracks <hello@set2tracks.example>",
        SITE_URL="https://set2tracks.example",
        PORT="8080",
    )

    assert settings["CORS_ORIGINS"] == ["https://www.youtube.com", "http://localhost:3000"]
    assert settings["FORCE_HTTPS"] is False
    assert settings["PORT"] == 8080
    assert settings["SITE_URL"] == "https://set2tracks.example"
    assert settings["LOG_LEVEL"] == "WARNING"
    assert settings["SMTP_URL"] is None  # an empty value means unset


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = persistent_secret_key(tmp_path / "instance")
    second = persistent_secret_key(tmp_path / "instance")

    assert first == second
    assert len(first) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "instance" / "secret_key").st_mode)
    assert mode == 0o600


def _run(command: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    environment.update(extra, PYTHONPATH=str(ROOT))
    return subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
    ],
    ids=["flask", "worker", "gunicorn"],
)
def test_entry_points_exit_with_one_clear_message(command: list[str], tmp_path: Path) -> None:
    result = _run(command, tmp_path, SET2TRACKS_ENV="production")

    assert result.returncode != 0
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_a_single_problem_fits_on_one_line(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        production(env, DATABASE_URL="postgres//oops")

    message = caught.value.format_message()
    assert "\n" not in message
    assert message.startswith("invalid configuration: DATABASE_URL: not a database URL")


def test_production_requires_an_https_site_url(env: pytest.MonkeyPatch) -> None:
    missing = problems(env, SITE_URL=None)
    plain = problems(env, SITE_URL="http://set2tracks.example")

    assert "required in production" in missing["SITE_URL"]
    assert "https" in plain["SITE_URL"]
    assert production(env, SITE_URL="https://set2tracks.example/")["SITE_URL"] == (
        "https://set2tracks.example"
    )
    # A production-like stack on this machine (docker compose) is reached over plain HTTP.
    assert production(env, SITE_URL="http://localhost:8000")["SITE_URL"] == (
        "http://localhost:8000"
    )


@pytest.mark.parametrize(
    ("url", "unprotected"),
    [
        ("redis://cache.internal:6379/0", True),
        ("redis://user@cache.internal:6379/0", True),
        ("redis://:s3cret@cache.internal:6379/0", False),
        ("redis://default:s3cret@cache.internal:6379/0", False),
        ("redis://cache.internal:6379/0?password=s3cret", False),
        ("rediss://cache.internal:6380/0", False),
        ("unix:///run/redis.sock", False),
    ],
)
def test_redis_without_password_or_tls_is_recognised(url: str, unprotected: bool) -> None:
    assert redis_url_unprotected(url) is unprotected


def test_production_warns_at_start_up_about_an_open_redis(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def start(redis_url: str) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            create_app(
                base_config(backends, tmp_path, SET2TRACKS_ENV="production", REDIS_URL=redis_url)
            )
        return [r.getMessage() for r in caplog.records if "REDIS_URL" in r.getMessage()]

    open_redis = start("redis://cache.internal:6379/0")
    protected = start("rediss://:s3cret@cache.internal:6380/0")

    assert len(open_redis) == 1
    assert "no password and no TLS" in open_redis[0]
    assert protected == []
