"""Account logic: registration, sign-in, passwords, invites, API tokens.

Services take ids and plain values, commit once at their end and raise ``DomainError``s
whose text is safe to show. Secrets (invite codes, API tokens) are stored as SHA-256
digests only: they are random and long, so a fast hash is enough and lookups stay exact.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from set2tracks.auth.models import ApiToken, Invite, User, UserPreferences
from set2tracks.auth.passwords import (
    hash_password,
    password_problem,
    verify_password,
    verify_password_for_unknown_user,
)
from set2tracks.database import utcnow
from set2tracks.errors import Conflict, Forbidden, InvalidInput, NotFound
from set2tracks.extensions import db
from set2tracks.queues import enqueue

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "s2t_"  # noqa: S105 (marks our tokens, e.g. for secret scanners)
RESET_SALT = "set2tracks.password-reset"
INVITE_DAYS = (1, 7, 30)


def digest(secret: str) -> str:
    """Return the SHA-256 hex digest under which a random secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def load_user(session_token: str) -> User | None:
    """Return the active user whose current session token is ``session_token``."""
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    return user if user is not None and user.is_active else None


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("This account does not exist.")
    return user


def find_user_by_email(email: str) -> User | None:
    """Return the user with this email, whatever its letter case."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def _check_password(password: str, email: str, display_name: str, field: str) -> None:
    problem = password_problem(password, email=email, display_name=display_name)
    if problem is not None:
        raise InvalidInput(problem, fields={field: [problem]})


def create_user(
    email: str,
    password: str,
    display_name: str,
    *,
    is_admin: bool = False,
    is_premium: bool = False,
) -> User:
    """Add a user with default preferences to the session (no commit)."""
    email = email.strip()
    display_name = display_name.strip()
    _check_password(password, email, display_name, "password")
    if find_user_by_email(email) is not None:
        raise Conflict(
            "An account with this email already exists.",
            fields={"email": ["An account with this email already exists."]},
        )
    user = User(
        email=email,
        password_hash=hash_password(password),
        display_name=display_name,
        is_admin=is_admin,
        is_premium=is_premium,
        session_token=new_session_token(),
        preferences=UserPreferences(),
    )
    db.session.add(user)
    return user


def register(email: str, display_name: str, password: str, invite_code: str | None) -> User:
    """Create an account in one transaction, consuming the invite the sign-up mode asks for."""
    mode = current_app.config["SIGNUP_MODE"]
    if mode == "closed":
        raise Forbidden("Registration is closed for now.")
    if mode == "invite" and not invite_code:
        raise Forbidden("Registration needs an invite for now.")
    try:
        user = create_user(email, password, display_name)
        db.session.flush()
        if invite_code:
            _consume_invite(invite_code, user)
        db.session.commit()
    except IntegrityError:
        # Two registrations raced for one email: the unique index decided.
        db.session.rollback()
        raise Conflict(
            "An account with this email already exists.",
            fields={"email": ["An account with this email already exists."]},
        ) from None
    except Exception:
        db.session.rollback()
        raise
    logger.info("account created", extra={"event": "register", "user": user.id})
    return user


def _consume_invite(code: str, user: User) -> None:
    """Mark the invite used by ``user`` in one conditional UPDATE; a second taker gets 0 rows."""
    now = utcnow()
    used = db.session.execute(
        update(Invite)
        .where(
            Invite.code_hash == digest(code),
            Invite.used_at.is_(None),
            Invite.revoked_at.is_(None),
            (Invite.expires_at.is_(None)) | (Invite.expires_at > now),
            (Invite.email.is_(None)) | (func.lower(Invite.email) == user.email.lower()),
        )
        .values(used_at=now, used_by_id=user.id)
        .returning(Invite.id)
    ).first()
    if used is None:
        message = (
            "This invite is not valid: it may have expired, been used or be for another email."
        )
        raise InvalidInput(message, fields={"invite": [message]})


def invite_email(code: str) -> str | None:
    """Return the email an unused, valid invite is bound to (to pre-fill the form)."""
    invite = db.session.scalar(select(Invite).where(Invite.code_hash == digest(code)))
    if invite is None or invite.used_at or invite.revoked_at:
        return None
    if invite.expires_at is not None and invite.expires_at <= utcnow():
        return None
    return invite.email


def authenticate(email: str, password: str) -> User | None:
    """Return the user these credentials belong to, spending the same time when none does."""
    user = find_user_by_email(email)
    if user is None:
        verify_password_for_unknown_user(password)
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


def record_login(user_id: int) -> None:
    """Remember when the user last signed in."""
    db.session.execute(update(User).where(User.id == user_id).values(last_login_at=utcnow()))
    db.session.commit()


def change_password(user_id: int, current: str, new: str) -> User:
    """Change a password after checking the current one; other sessions are signed out."""
    user = _user(user_id)
    if not verify_password(user.password_hash, current):
        message = "Your current password is not right."
        raise InvalidInput(message, fields={"current_password": [message]})
    _set_password(user, new, "new_password")
    db.session.commit()
    return user


def _set_password(user: User, password: str, field: str) -> None:
    _check_password(password, user.email, user.display_name, field)
    user.password_hash = hash_password(password)
    # Every session and remember cookie holds the old token: they all end here.
    user.session_token = new_session_token()


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def _password_fingerprint(user: User) -> str:
    return digest(user.password_hash)[:16]


def make_reset_token(user: User) -> str:
    """Return a reset token for ``user``, dead as soon as the password changes."""
    return str(_reset_serializer().dumps({"u": user.id, "p": _password_fingerprint(user)}))


def user_for_reset_token(token: str) -> User:
    """Return the user a still-valid reset token was made for."""
    message = "This reset link has expired or was already used. Ask for a new one."
    try:
        data = _reset_serializer().loads(
            token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"]
        )
    except (BadSignature, SignatureExpired):
        raise InvalidInput(message) from None
    user = db.session.get(User, data.get("u")) if isinstance(data, dict) else None
    if user is None or not user.is_active or data.get("p") != _password_fingerprint(user):
        raise InvalidInput(message)
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password with a reset token; the token and every session die with it."""
    user = user_for_reset_token(token)
    _set_password(user, password, "password")
    db.session.commit()
    return user


def request_password_reset(email: str) -> None:
    """Email a reset link if the address has an account; say nothing either way."""
    user = find_user_by_email(email)
    if user is not None and user.is_active:
        enqueue("set2tracks.auth.jobs.send_password_reset", user.id, queue="high")


def set_preferences(
    user_id: int, *, email_when_ready: bool, play_sound_when_ready: bool, theme: str
) -> None:
    """Save a user's preferences."""
    preferences = db.session.get(UserPreferences, user_id)
    if preferences is None:
        preferences = UserPreferences(user_id=user_id)
        db.session.add(preferences)
    preferences.email_when_ready = email_when_ready
    preferences.play_sound_when_ready = play_sound_when_ready
    preferences.theme = theme
    db.session.commit()


def delete_account(user_id: int, password: str) -> None:
    """Delete an account and its personal data; the sets it submitted stay, unattributed."""
    user = _user(user_id)
    if not verify_password(user.password_hash, password):
        message = "This password is not right."
        raise InvalidInput(message, fields={"password": [message]})
    db.session.execute(delete(User).where(User.id == user_id))
    db.session.commit()
    logger.info("account deleted", extra={"event": "delete_account", "user": user_id})


@dataclass(frozen=True)
class IssuedSecret:
    """A secret shown once to the person who created it, with the row it unlocks."""

    id: int
    secret: str


def create_invite(created_by_id: int, *, email: str | None, days: int) -> IssuedSecret:
    """Create a single-use invite code valid for ``days``, optionally for one email."""
    if days not in INVITE_DAYS:
        raise InvalidInput("Choose how long the invite is valid.", fields={"days": ["invalid"]})
    code = secrets.token_urlsafe(24)
    invite = Invite(
        code_hash=digest(code),
        email=email.strip() if email else None,
        expires_at=utcnow() + timedelta(days=days),
        created_by_id=created_by_id,
    )
    db.session.add(invite)
    db.session.commit()
    return IssuedSecret(invite.id, code)


def list_invites() -> list[Invite]:
    """Return every invite, newest first."""
    return list(db.session.scalars(select(Invite).order_by(Invite.created_at.desc())))


def revoke_invite(invite_id: int) -> None:
    """Revoke an unused invite."""
    invite = db.session.get(Invite, invite_id)
    if invite is None:
        raise NotFound("This invite does not exist.")
    if invite.used_at is None and invite.revoked_at is None:
        invite.revoked_at = utcnow()
    db.session.commit()


def create_api_token(user_id: int, name: str) -> IssuedSecret:
    """Create a personal API token; its plain value exists only in the return value."""
    name = name.strip()
    if not name:
        raise InvalidInput("Name the token.", fields={"name": ["Name the token."]})
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name,
        token_hash=digest(value),
        prefix=value[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8],
    )
    db.session.add(token)
    db.session.commit()
    return IssuedSecret(token.id, value)


def list_api_tokens(user_id: int) -> list[ApiToken]:
    """Return a user's tokens that still work, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def revoke_api_token(user_id: int, token_id: int) -> None:
    """Revoke one of the user's tokens (someone else's is not found)."""
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
    )
    if token is None or token.revoked_at is not None:
        raise NotFound("This token does not exist.")
    token.revoked_at = utcnow()
    db.session.commit()


def user_for_api_token(value: str) -> User | None:
    """Return the active owner of a working API token, noting when it was used."""
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest(value), ApiToken.revoked_at.is_(None))
    )
    if token is None or not token.user.is_active:
        return None
    token.last_used_at = utcnow()
    db.session.commit()
    return token.user


def set_admin(email: str, *, is_admin: bool = True) -> User:
    """Grant (or remove) the admin role."""
    user = find_user_by_email(email)
    if user is None:
        raise NotFound(f"No account has the email {email}.")
    user.is_admin = is_admin
    db.session.commit()
    return user
