"""Background jobs of the accounts package (enqueued by dotted path, take ids)."""

from __future__ import annotations

import logging

from flask import current_app, render_template

from set2tracks.auth.models import User
from set2tracks.auth.services import make_reset_token
from set2tracks.clients.mail import Email, MailError, mailer
from set2tracks.extensions import db
from set2tracks.links import external_url
from set2tracks.queues import retried

logger = logging.getLogger(__name__)


# The person was told the email is on its way: a mail server's bad minute must not lose it.
# The last retry still leaves a fresh link (each attempt makes its own token).
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
    email = Email(to=user.email, subject="Reset your Set2Tracks password", text=text)
    try:
        mailer().send(email)
    except MailError as error:
        if error.transient:
            raise  # retried by the runner
        logger.error("reset email to a recipient at %s not sent: %s", email.recipient_domain, error)
