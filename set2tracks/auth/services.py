"""Account logic: registration, sign-in, passwords, invites, API tokens.

Services take ids and plain values, commit once at their end and raise ``DomainError``s
whose text is safe to show. Secrets (invite codes, API tokens) are stored as SHA-256
digests only: they are random and long, so a fast hash is enough and lookups stay exact.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, SessionTransaction

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
from set2tracks.sets.submissions import forget_submitter, remove_uploads

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "s2t_"  # noqa: S105 (marks our tokens, e.g. for secret scanners)
RESET_SALT = "set2tracks.password-reset"
CONFIRM_SALT = "set2tracks.confirm-email"
INVITE_DAYS = (1, 7, 30)
TOKEN_EXPIRY_DAYS = (30, 90, 365)
MAX_ACTIVE_TOKENS = 20
_WROTE = "set2tracks.flushed_writes"  # session.info key: the transaction has written rows
# A token's last use is written at most this often: a busy script must not turn every API
# read into a write on one row.
LAST_USED_PRECISION = timedelta(minutes=1)
INVALID_INVITE = "This invite is not valid: it may have expired, been used or be for another email."
INVALID_RESET_LINK = "This reset link has expired or was already used. Ask for a new one."
INVALID_CONFIRMATION_LINK = (
    "This confirmation link has expired or was already used. Register again."
)
# A waiting registration's link is emailed again at most this often, however often its
# address is registered: nobody can mail-bomb an inbox through the sign-up form.
CONFIRMATION_RESEND_INTERVAL = timedelta(minutes=10)


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
    """Add a confirmed user with default preferences to the session (no commit).

    For accounts made by an admin or a test: self-service sign-up goes through ``register``.
    """
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
        email_confirmed_at=utcnow(),
        preferences=UserPreferences(),
    )
    db.session.add(user)
    return user


def register(email: str, display_name: str, password: str, invite_code: str | None) -> User | None:
    """Register an email, telling the caller nothing about whether it had an account.

    Return the user to sign in now: only an invite bound to the very email proves the
    address; every other accepted registration answers "check your inbox". The invite is
    checked first, then the password policy; the password is always hashed. A new email gets
    an account waiting for confirmation; an email with an account gets a note to its owner.
    A waiting registration whose links still work is never replaced (that would kill the
    link in its owner's inbox): registering it again re-sends a link, at most once per 10
    minutes. The password is chosen when the link is opened, so a squatter's never survives.
    """
    mode = current_app.config["SIGNUP_MODE"]
    if mode == "closed":
        raise Forbidden("Registration is closed for now.")
    if mode == "invite" and not invite_code:
        raise Forbidden("Registration needs an invite for now.")
    email, display_name = email.strip(), display_name.strip()
    invite = _usable_invite(invite_code, email) if invite_code else None
    _check_password(password, email, display_name, "password")
    password_hash = hash_password(password)
    proven = invite is not None and invite.email is not None
    send_link = False
    try:
        user = find_user_by_email(email)
        taken = user is not None and user.is_confirmed
        if user is None or (not taken and (proven or _links_expired(user))):
            user = _waiting_registration(user, email, display_name, password_hash, proven)
            send_link = not proven
        elif not taken:
            send_link = _claim_resend(user.id)
        if invite_code:
            # Spent even when the email had an account: an invite that survived would tell
            # its holder that the address is taken.
            _consume_invite(invite_code, email, None if taken else user.id)
        db.session.commit()
    except IntegrityError:
        # Two registrations raced for one new email: the unique index let one through.
        db.session.rollback()
        return None
    except Exception:
        db.session.rollback()
        raise
    if taken:
        enqueue("set2tracks.auth.jobs.send_account_exists", user.id, queue="high")
    elif proven:
        logger.info("account created", extra={"event": "register", "user": user.id})
        return user
    elif send_link:
        enqueue("set2tracks.auth.jobs.send_email_confirmation", user.id, queue="high")
    return None


def _links_expired(user: User) -> bool:
    """Return whether every confirmation link of a waiting registration has expired."""
    max_age = timedelta(seconds=current_app.config["EMAIL_CONFIRMATION_MAX_AGE"])
    sent = user.confirmation_sent_at
    return sent is None or sent <= utcnow() - max_age


def _claim_resend(user_id: int) -> bool:
    """Note a new link for a waiting registration unless one went out in the last 10 minutes.

    One conditional UPDATE: of many registrations at once, one gets to send.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(User)
        .where(
            User.id == user_id,
            User.email_confirmed_at.is_(None),
            (User.confirmation_sent_at.is_(None))
            | (User.confirmation_sent_at <= now - CONFIRMATION_RESEND_INTERVAL),
        )
        .values(confirmation_sent_at=now)
        .returning(User.id)
    ).first()
    return claimed is not None


def _waiting_registration(
    user: User | None, email: str, display_name: str, password_hash: str, proven: bool
) -> User:
    """Write a new registration, or replace an expired waiting one, and flush it (no commit)."""
    user = user or User(email=email, preferences=UserPreferences())
    user.password_hash, user.display_name = password_hash, display_name
    now = utcnow()
    user.email_confirmed_at = now if proven else None
    user.confirmation_sent_at = None if proven else now
    user.session_token = new_session_token()
    db.session.add(user)
    db.session.flush()
    return user


def _invite_conditions(email: str) -> list[Any]:
    now = utcnow()
    return [
        Invite.used_at.is_(None),
        Invite.revoked_at.is_(None),
        (Invite.expires_at.is_(None)) | (Invite.expires_at > now),
        (Invite.email.is_(None)) | (func.lower(Invite.email) == email.lower()),
    ]


def _usable_invite(code: str, email: str) -> Invite:
    """Return the invite if ``email`` may use it now, else raise (nothing is changed)."""
    invite = db.session.scalar(
        select(Invite).where(Invite.code_hash == digest(code), *_invite_conditions(email))
    )
    if invite is None:
        raise InvalidInput(INVALID_INVITE, fields={"invite": [INVALID_INVITE]})
    return invite


def _consume_invite(code: str, email: str, user_id: int | None) -> None:
    """Mark the invite used in one conditional UPDATE; a second taker gets 0 rows."""
    used = db.session.execute(
        update(Invite)
        .where(Invite.code_hash == digest(code), *_invite_conditions(email))
        .values(used_at=utcnow(), used_by_id=user_id)
        .returning(Invite.id)
    ).first()
    if used is None:
        raise InvalidInput(INVALID_INVITE, fields={"invite": [INVALID_INVITE]})


def _confirm_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CONFIRM_SALT)


def _link_user(
    serializer: URLSafeTimedSerializer, token: str, max_age_setting: str, message: str
) -> tuple[User | None, dict[str, Any]]:
    """Return the account an emailed link's signed token names, with the token's data.

    A token that is forged, expired or malformed raises ``InvalidInput(message)``; the caller
    checks that the account is still in the state the link was made for.
    """
    try:
        data = serializer.loads(token, max_age=current_app.config[max_age_setting])
    except (BadSignature, SignatureExpired):
        raise InvalidInput(message) from None
    if not isinstance(data, dict):
        raise InvalidInput(message)
    return db.session.get(User, data.get("u")), data


def make_confirmation_token(user: User) -> str:
    """Return the link token confirming ``user``'s registration (single use)."""
    return str(_confirm_serializer().dumps({"u": user.id, "s": digest(user.session_token)[:16]}))


def user_for_confirmation_token(token: str) -> User:
    """Return the account waiting for the confirmation this token carries.

    The token names the registration's session token, which confirmation (and replacing an
    expired registration) sets anew: a link works once, and for its own registration only.
    """
    message = INVALID_CONFIRMATION_LINK
    user, data = _link_user(_confirm_serializer(), token, "EMAIL_CONFIRMATION_MAX_AGE", message)
    if (
        user is None
        or user.is_confirmed
        or not user.is_active
        or not hmac.compare_digest(str(data.get("s")), digest(user.session_token)[:16])
    ):
        raise InvalidInput(message)
    return user


def confirm_email(token: str, password: str) -> User:
    """Confirm a waiting registration with the password chosen now; they can sign in.

    Only the inbox has the link: whoever opens it owns the address and chooses the password,
    so a password typed at registration by someone else never opens the account.
    """
    user = user_for_confirmation_token(token)
    _check_password(password, user.email, user.display_name, "password")
    confirmed = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.email_confirmed_at.is_(None),
            # The link's registration, not confirmed by a racing request meanwhile.
            User.session_token == user.session_token,
        )
        .values(
            email_confirmed_at=utcnow(),
            password_hash=hash_password(password),
            session_token=new_session_token(),
        )
        .returning(User.id)
    ).first()
    db.session.commit()
    if confirmed is None:
        raise InvalidInput("This confirmation link was already used. Sign in.")
    db.session.refresh(user)
    logger.info("account created", extra={"event": "register", "user": user.id})
    return user


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
    return check_password(find_user_by_email(email), password)


def check_password(user: User | None, password: str) -> User | None:
    """Return ``user`` if ``password`` is theirs and they may sign in (same time for None)."""
    if user is None:
        verify_password_for_unknown_user(password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if not user.is_active or not user.is_confirmed:
        return None
    return user


def record_login(user_id: int, *, remember: bool = False) -> str | None:
    """Note a sign-in, in one commit; with ``remember``, return the account's remember token.

    The remember token is made when no browser holds one yet: every remembered browser of
    the account shares it, and one sign-out clears it for all of them.
    """
    user = _user(user_id)
    user.last_login_at = utcnow()
    if remember and user.remember_token is None:
        user.remember_token = new_session_token()
    token = user.remember_token if remember else None
    db.session.commit()
    return token


def change_password(user_id: int, current: str, new: str, *, revoke_tokens: bool = True) -> User:
    """Change a password after checking the current one; other sessions are signed out."""
    user = _user(user_id)
    if not verify_password(user.password_hash, current):
        message = "Your current password is not right."
        raise InvalidInput(message, fields={"current_password": [message]})
    _check_password(new, user.email, user.display_name, "new_password")
    user.password_hash = hash_password(new)
    _end_sessions(user)
    if revoke_tokens:
        _revoke_all_api_tokens(user.id)
    db.session.commit()
    return user


def _end_sessions(user: User) -> None:
    # Every session and remember cookie holds the old token: they all end here.
    user.session_token = new_session_token()
    user.remember_token = None


def sign_out_everywhere(user_id: int) -> User:
    """End every session and "keep me signed in" cookie of the account."""
    user = _user(user_id)
    _end_sessions(user)
    db.session.commit()
    logger.info("signed out everywhere", extra={"event": "sign_out_everywhere", "user": user_id})
    return user


def forget_remembered(user_id: int) -> None:
    """Make every "keep me signed in" cookie of the account worthless (sessions go on)."""
    db.session.execute(update(User).where(User.id == user_id).values(remember_token=None))
    db.session.commit()


def user_for_remember_token(session_token: str, token: str) -> User | None:
    """Return the active user a remember cookie's two tokens still point to."""
    user = load_user(session_token)
    if user is None or user.remember_token is None:
        return None
    return user if hmac.compare_digest(user.remember_token, token) else None


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def password_fingerprint(user: User) -> str:
    """Return a short digest of the password hash: what a link or cookie dies with."""
    return digest(user.password_hash)[:16]


def make_reset_token(user: User) -> str:
    """Return a reset token for ``user``, dead as soon as the password changes."""
    return str(_reset_serializer().dumps({"u": user.id, "p": password_fingerprint(user)}))


def user_for_reset_token(token: str) -> User:
    """Return the user a still-valid reset token was made for."""
    message = INVALID_RESET_LINK
    user, data = _link_user(_reset_serializer(), token, "PASSWORD_RESET_MAX_AGE", message)
    if user is None or not user.is_active or data.get("p") != password_fingerprint(user):
        raise InvalidInput(INVALID_RESET_LINK)
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password with a reset token; the token, every session and API token die.

    The UPDATE only applies while the password is the one the token was made for, so two
    requests racing with one link cannot both set a password.
    """
    user = user_for_reset_token(token)
    _check_password(password, user.email, user.display_name, "password")
    old_hash = user.password_hash
    changed = db.session.execute(
        update(User)
        .where(User.id == user.id, User.password_hash == old_hash)
        .values(
            password_hash=hash_password(password),
            session_token=new_session_token(),
            remember_token=None,
        )
        .returning(User.id)
    ).first()
    if changed is None:
        db.session.rollback()
        raise InvalidInput(INVALID_RESET_LINK)
    _revoke_all_api_tokens(user.id)
    db.session.commit()
    db.session.refresh(user)
    logger.info("password reset", extra={"event": "password_reset", "user": user.id})
    return user


def request_password_reset(email: str) -> None:
    """Email a reset link if the address has a working account; say nothing either way."""
    user = find_user_by_email(email)
    if user is not None and user.is_active and user.is_confirmed:
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
    """Delete an account and its personal data: its private sets, uploads and active work.

    Public sets it submitted stay, unattributed.
    """
    user = _user(user_id)
    if not verify_password(user.password_hash, password):
        message = "This password is not right."
        raise InvalidInput(message, fields={"password": [message]})
    upload_files = forget_submitter(user_id)
    db.session.execute(delete(User).where(User.id == user_id))
    db.session.commit()
    remove_uploads(upload_files)
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


def _working_tokens(now: datetime) -> list[Any]:
    return [
        ApiToken.revoked_at.is_(None),
        (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
    ]


def create_api_token(user_id: int, name: str, *, days: int | None = None) -> IssuedSecret:
    """Create a personal API token, valid ``days`` or until revoked; shown once."""
    name = name.strip()
    if not name:
        raise InvalidInput("Name the token.", fields={"name": ["Name the token."]})
    if days is not None and days not in TOKEN_EXPIRY_DAYS:
        message = "Choose how long the token is valid."
        raise InvalidInput(message, fields={"expires_in_days": [message]})
    now = utcnow()
    if db.session.new or db.session.dirty or db.session.deleted or db.session.info.get(_WROTE):
        # Ending the snapshot below must never save a caller's half-done work with a token.
        raise RuntimeError("create_api_token needs a session without uncommitted changes")
    # End the request's read snapshot (it holds reads only, checked above), then lock before
    # counting: two requests at once must not both slip under the cap. An UPDATE locks the
    # row on PostgreSQL and the database on SQLite (which ignores FOR UPDATE); a stale SQLite
    # snapshot could not be upgraded to a write.
    db.session.commit()
    try:
        db.session.execute(update(User).where(User.id == user_id).values(id=User.id))
    except OperationalError as error:
        db.session.rollback()
        if _sqlite_busy(error):
            raise Conflict("Another token is being created right now: try again.") from None
        raise  # an outage or a lock timeout elsewhere: the error handler answers 503
    active = db.session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .where(ApiToken.user_id == user_id, *_working_tokens(now))
    )
    if (active or 0) >= MAX_ACTIVE_TOKENS:
        db.session.rollback()
        raise Conflict(
            f"You have {MAX_ACTIVE_TOKENS} working tokens: revoke one you no longer use first."
        )
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name,
        token_hash=digest(value),
        prefix=value[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8],
        expires_at=now + timedelta(days=days) if days else None,
    )
    db.session.add(token)
    db.session.commit()
    return IssuedSecret(token.id, value)


@event.listens_for(Session, "after_flush")
def _note_write(session: Session, context: Any) -> None:
    """Remember that the session's transaction holds flushed, uncommitted writes."""
    session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_writes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed or rolled back for good
        session.info.pop(_WROTE, None)


def _sqlite_busy(error: OperationalError) -> bool:
    """Return whether ``error`` is SQLite's "database is locked" (another writer holds it)."""
    return isinstance(error.orig, sqlite3.OperationalError) and "database is locked" in str(
        error.orig
    )


def list_api_tokens(user_id: int) -> list[ApiToken]:
    """Return a user's tokens that still work, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, *_working_tokens(utcnow()))
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def _revoke_all_api_tokens(user_id: int) -> None:
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
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
    """Return the active owner of a working API token, noting (to the minute) its use."""
    now = utcnow()
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest(value), *_working_tokens(now))
    )
    if token is None or not token.user.is_active:
        return None
    stale = now - LAST_USED_PRECISION
    if token.last_used_at is None or token.last_used_at <= stale:
        # Conditional: of many requests at once, one writes and the others find it fresh.
        db.session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token.id,
                (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at <= stale),
            )
            .values(last_used_at=now)
        )
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
