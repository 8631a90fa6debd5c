"""Sign-in budgets: a hard limit per (address, account), a cap per account across addresses.

One address gets five wrong passwords for one account per 15 minutes, counted before the
password is checked (parallel requests cannot squeeze in more) and given back on success;
an IPv6 address counts by its /64, which one client usually holds whole. Across addresses an
account takes 50 failures per 15 minutes from browsers it does not know, then refuses them
at once (a 429, never a wait that holds a worker). Its owner is never locked out: a browser
the account signed in on skips the cap, and a password reset by email makes the browser it
was done in one of those and clears the count. Unknown emails have no account-wide count.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Response, after_this_request, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from redis.exceptions import RedisError

from set2tracks.auth import services
from set2tracks.auth.models import User
from set2tracks.extensions import client_address_key, limiter

logger = logging.getLogger(__name__)

# Failed sign-ins from one address to one account: the guessing budget of one attacker.
FAILED_LOGIN_LIMIT = "5 per 15 minutes"
# Failed sign-ins to one account from browsers it does not know, across addresses.
ACCOUNT_FAILURE_LIMIT = "50 per 15 minutes"
DEVICE_SALT = "set2tracks.known-device"
DEVICE_COOKIE_DAYS = 365
ADDRESS_SPENT = (
    "Too many failed sign-ins to this account from your address. "
    "Try again in {minutes}, or reset your password."
)
ACCOUNT_SPENT = (
    "Too many failed sign-ins to this account recently. If it is yours, reset your "
    "password by email: you can then sign in from this browser."
)


@dataclass(frozen=True)
class SignInAttempt:
    """The outcome of one sign-in: the user, or why not (and when to try again)."""

    user: User | None
    refusal: str | None = None
    retry_after: int | None = None


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


def _prefix() -> str:
    prefix: str = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    return prefix


def _address_budget(account: str) -> tuple[RateLimitItem, tuple[str, ...]]:
    return parse(FAILED_LOGIN_LIMIT), (_prefix(), "login-failed", client_address_key(), account)


def _account_budget(account: str) -> tuple[RateLimitItem, tuple[str, ...]]:
    return parse(ACCOUNT_FAILURE_LIMIT), (_prefix(), "login-account", account)


def _seconds_left(item: RateLimitItem, keys: tuple[str, ...]) -> int:
    reset = limiter.limiter.get_window_stats(item, *keys).reset_time
    return max(1, int(reset - time.time()))


def check_sign_in(email: str, password: str) -> SignInAttempt:
    """Check credentials within the budgets; the caller signs the user in or shows the refusal.

    The account (looked up once) decides whether this browser is known to it; an email with
    no account only spends the address's budget, so made-up emails cannot hold back real ones.
    """
    account = account_key(email)
    holder = services.find_user_by_email(email)
    counted = _enabled() and holder is not None and not known_device(account, holder)
    if counted:
        item, keys = _account_budget(account)
        with _storage():
            if not limiter.limiter.test(item, *keys):
                return SignInAttempt(None, ACCOUNT_SPENT, _seconds_left(item, keys))
    if _enabled():
        item, keys = _address_budget(account)
        with _storage():
            if not limiter.limiter.hit(item, *keys):
                seconds = _seconds_left(item, keys)
                minutes = -(-seconds // 60)
                wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
                return SignInAttempt(None, ADDRESS_SPENT.format(minutes=wait), seconds)
    user = services.check_password(holder, password)
    if user is not None:
        _refund_try(account)
    elif counted:
        item, keys = _account_budget(account)
        with _storage():
            limiter.limiter.hit(item, *keys)
    return SignInAttempt(user)


def _refund_try(account: str) -> None:
    """Give back the address's failures: it proved it knows the password."""
    if not _enabled():
        return
    item, keys = _address_budget(account)
    with _storage():
        limiter.limiter.clear(item, *keys)


def forgive_account(user: User) -> None:
    """Clear the account's failures: its owner just proved the address (a reset by email)."""
    if not _enabled():
        return
    item, keys = _account_budget(account_key(user.email))
    with _storage():
        limiter.limiter.clear(item, *keys)


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


def remember_device(user: User) -> None:
    """Mark this browser as one the account signed in on (dies with a new password)."""
    account = account_key(user.email)
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
