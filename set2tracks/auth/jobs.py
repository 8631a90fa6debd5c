"""Background jobs of the accounts package (enqueued by dotted path, take ids)."""

from __future__ import annotations

import logging

from flask import current_app, render_template

from set2tracks.auth.models import User
from set2tracks.auth.services import make_confirmation_token, make_reset_token
from set2tracks.clients.mail import Email, deliver
from set2tracks.extensions import db
from set2tracks.links import external_url
from set2tracks.queues import job, retried

logger = logging.getLogger(__name__)


# Each of these emails was promised on screen ("check your inbox"): a mail server's bad
# minute must not lose it. Every attempt makes its own token, so a late one still works.
@job
@retried(30, 120, 600)
def send_password_reset(user_id: int) -> None:
    """Email a password reset link to the user (the token is made here, never queued)."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        logger.info("no reset email: account %s is gone or disabled", user_id)
        return
    link = external_url("auth.reset_password", token=make_reset_token(user))
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    text = render_template("auth/email/reset_password.txt", user=user, link=link, minutes=minutes)
    deliver(Email(to=user.email, subject="Reset your Set2Tracks password", text=text))


@job
@retried(30, 120, 600)
def send_email_confirmation(user_id: int) -> None:
    """Email the link that confirms a registration (the token is made here, never queued)."""
    user = db.session.get(User, user_id)
    if user is None or user.is_confirmed or not user.is_active:
        return
    link = external_url("auth.confirm_email", token=make_confirmation_token(user))
    hours = current_app.config["EMAIL_CONFIRMATION_MAX_AGE"] // 3600
    text = render_template("auth/email/confirm_email.txt", user=user, link=link, hours=hours)
    deliver(Email(to=user.email, subject="Confirm your Set2Tracks account", text=text))


@job
@retried(30, 120, 600)
def send_account_exists(user_id: int) -> None:
    """Tell an account's owner that someone tried to register their address again."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return
    text = render_template(
        "auth/email/account_exists.txt",
        user=user,
        login_link=external_url("auth.login"),
        reset_link=external_url("auth.reset_request"),
    )
    deliver(Email(to=user.email, subject="You already have a Set2Tracks account", text=text))
