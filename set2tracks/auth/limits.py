"""Sign-in budgets: a hard limit per (address, account), a bounded slowdown per account.

One address gets five wrong passwords for one account per 15 minutes, counted before the
password is checked (parallel requests cannot squeeze in more) and given back on success.
Across addresses an account is never refused, only slowed: past a threshold of failures from
browsers it does not know, each try waits a little longer, up to a few seconds, so the owner
can always sign in from a new browser while a spread-out guesser gets few tries an hour.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Response, after_this_request, current_app, request
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from redis.exceptions import RedisError

from set2tracks.auth import services
from set2tracks.auth.models import User
from set2tracks.extensions import limiter

logger = logging.getLogger(__name__)

# Failed sign-ins from one address to one account: the guessing budget of one attacker.
FAILED_LOGIN_LIMIT = "5 per 15 minutes"
# Failed sign-ins to one account from browsers it never signed in on, across addresses, that
# cost no delay; each one beyond adds SLOWDOWN_STEP seconds, up to MAX_SLOWDOWN.
ACCOUNT_FAILURES_WITHOUT_DELAY = 50
ACCOUNT_FAILURE_WINDOW = "15 minutes"
SLOWDOWN_STEP = 0.25
MAX_SLOWDOWN = 3.0
DEVICE_SALT = "set2tracks.known-device"
DEVICE_COOKIE_DAYS = 365


def sleep(seconds: float) -> None:
    """Hold the request for ``seconds`` (tests replace it to read the delays asked for)."""
    time.sleep(seconds)


def _enabled() -> bool:
    return bool(limiter.enabled and current_app.config.get("RATELIMIT_ENABLED", True))


@contextmanager
def _storage() -> Iterator[None]:
    """Run a budget operation; a storage outage leaves sign-in open and is logged loudly.

    Flask-Limiter's ``limiter`` is the in-memory fallback once it has noticed the outage (the
    login view's own limit notices first), so this only fails open for the requests in between.
    """
    try:
        yield
    except RedisError as error:
        logger.error("sign-in limits unavailable: %s", type(error).__name__)


def account_key(email: str) -> str:
    """Return the key naming an account in the limiter (a digest: no email in key names)."""
    return services.digest(email.strip().lower())[:32]


def _address_budget(account: str) -> tuple[RateLimitItem, tuple[str, ...]]:
    prefix: str = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    address = get_remote_address()
    return parse(FAILED_LOGIN_LIMIT), (prefix, "login-failed", address, account)


def _account_failures(account: str) -> tuple[RateLimitItem, tuple[str, ...]]:
    # A counter, never a refusal: its amount is out of reach, only the count is read.
    prefix: str = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    return parse(f"1000000 per {ACCOUNT_FAILURE_WINDOW}"), (prefix, "login-account", account)


def spend_try(account: str) -> int | None:
    """Count this try against the address's budget before the password is checked.

    Return the seconds to wait when the budget is spent (the try is refused), else None.
    """
    if not _enabled():
        return None
    item, keys = _address_budget(account)
    with _storage():
        if not limiter.limiter.hit(item, *keys):
            reset = limiter.limiter.get_window_stats(item, *keys).reset_time
            return max(1, int(reset - time.time()))
    return None


def refund_try(account: str) -> None:
    """Give back the address's failures: it proved it knows the password."""
    if not _enabled():
        return
    item, keys = _address_budget(account)
    with _storage():
        limiter.limiter.clear(item, *keys)


def slow_down(account: str, user: User | None) -> float:
    """Wait as long as the account's recent failures ask, unless this browser is known.

    Return the delay waited (seconds). Never refuses: the owner on a new browser gets in.
    """
    if not _enabled() or known_device(account, user):
        return 0.0
    item, keys = _account_failures(account)
    failures = 0
    with _storage():
        failures = item.amount - limiter.limiter.get_window_stats(item, *keys).remaining
    delay = min(MAX_SLOWDOWN, SLOWDOWN_STEP * (failures + 1 - ACCOUNT_FAILURES_WITHOUT_DELAY))
    if delay > 0:
        sleep(delay)
        return delay
    return 0.0


def record_failure(account: str, user: User | None) -> None:
    """Count a wrong password against the account, unless from a browser it knows."""
    if not _enabled() or known_device(account, user):
        return
    item, keys = _account_failures(account)
    with _storage():
        limiter.limiter.hit(item, *keys)


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=DEVICE_SALT)


def known_device(account: str, user: User | None) -> bool:
    """Return whether this browser signed in to ``account`` since its password was set."""
    cookie = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"], "")
    if not cookie or user is None:
        return False
    try:
        data = _device_serializer().loads(cookie, max_age=DEVICE_COOKIE_DAYS * 24 * 3600)
    except BadSignature:  # also an expired one
        return False
    return (
        isinstance(data, dict)
        and data.get("a") == account
        and data.get("p") == services.password_fingerprint(user)
    )


def remember_device(account: str, user: User) -> None:
    """Mark this browser as one the account signed in on (dies with a new password)."""
    # The nonce makes every device's cookie its own; the serializer adds the time.
    value = str(
        _device_serializer().dumps(
            {"a": account, "p": services.password_fingerprint(user), "n": secrets.token_hex(8)}
        )
    )

    def set_cookie(response: Response) -> Response:
        response.set_cookie(
            current_app.config["DEVICE_COOKIE_NAME"],
            value,
            max_age=DEVICE_COOKIE_DAYS * 24 * 3600,
            path="/",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response

    after_this_request(set_cookie)
