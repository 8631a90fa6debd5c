"""Outgoing email: SMTP in production, files in ``instance/outbox/`` when embedded, memory in tests.

Jobs call ``mailer().send(Email(...))``. Bodies can hold secrets (a password reset link), so
no backend ever logs a body or a credential: log lines name the recipient's domain, the
subject and, for the console backend, the file the message was written to.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app

from set2tracks.config import PRODUCTION, ConfigError

logger = logging.getLogger(__name__)

EXTENSION_KEY = "s2t_mailer"
BACKENDS = ("smtp", "console", "memory")
SMTP_TIMEOUT = 10.0
DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
_REDACTED = "[redacted]"


class MailError(Exception):
    """The message could not be handed to the mail server.

    ``transient`` failures (a 4xx reply, a dropped or refused connection, a full disk) may
    succeed later and the job retries them; permanent ones (a 5xx reply, a certificate or
    TLS set-up the server will never accept) would fail the same way every time.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Email:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    text: str

    def __post_init__(self) -> None:
        # A subject may one day quote a set's title; a line break would smuggle in headers.
        for name in ("to", "subject"):
            if any(char in getattr(self, name) for char in "\r\n"):
                raise ValueError(f"email {name} must not contain line breaks")

    @property
    def recipient_domain(self) -> str:
        """Return the part of the address after ``@``: enough to trace, not to identify."""
        return self.to.rpartition("@")[2] or "?"


class Mailer(Protocol):
    """Anything that can send an ``Email``."""

    def send(self, email: Email) -> None:
        """Deliver ``email`` or raise ``MailError``."""
        ...


def build_message(email: Email, sender: str, *, readable: bool = False) -> EmailMessage:
    """Return ``email`` as a MIME message from ``sender`` with Date and Message-ID set."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    # Quoted-printable would turn "?token=" into "?token=3D" and fold long links: a file a
    # developer reads must keep them verbatim. Over SMTP the receiving client decodes either.
    message.set_content(email.text, cte="8bit" if readable else None)
    return message


def _domain(sender: str) -> str:
    # make_msgid would otherwise ask DNS for this host's name on every message.
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


class SmtpMailer:
    """Send each email over a fresh SMTP connection (SMTPS, STARTTLS or plain)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = SMTP_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in DEFAULT_PORTS:
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.sender = sender
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context

    @classmethod
    def from_url(
        cls,
        url: str,
        sender: str,
        *,
        timeout: float = SMTP_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SmtpMailer:
        """Build a mailer from ``smtp[s|+starttls]://user:password@host:port``."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            # urlsplit's message quotes only the port, but say it ourselves to be sure.
            raise ValueError("SMTP_URL has an invalid port") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp+starttls://user:password@host:587")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            security=parts.scheme,
            sender=sender,
            # Credentials are percent-encoded in a URL: an "@" in a password arrives as %40.
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            ssl_context=ssl_context,
        )

    def __repr__(self) -> str:
        return f"SmtpMailer({self.security}://{self.host}:{self.port}, user={self.username!r})"

    def send(self, email: Email) -> None:
        """Hand ``email`` to the SMTP server, raising ``MailError`` if it is not accepted."""
        message = build_message(email, self.sender)
        try:
            client = self._connect()
            try:
                if self.security == "smtp+starttls":
                    client.starttls(context=self._context())
                if self.username:
                    client.login(self.username, self._password or "")
                client.send_message(
                    message, from_addr=parseaddr(self.sender)[1], to_addrs=[email.to]
                )
            finally:
                _quit_quietly(client)
        except (smtplib.SMTPException, OSError) as error:
            # "from None": the chained traceback would be logged by the job, and it is
            # simpler to guarantee one scrubbed message than every library's wording.
            raise MailError(self._describe(error), transient=_transient(error)) from None
        logger.info(
            "mail sent to a recipient at %s, subject %r", email.recipient_domain, email.subject
        )

    def _connect(self) -> smtplib.SMTP:
        if self.security == "smtps":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _describe(self, error: BaseException) -> str:
        if isinstance(error, smtplib.SMTPResponseException):
            detail = f"{error.smtp_code} {_text(error.smtp_error)}"
        elif isinstance(error, smtplib.SMTPRecipientsRefused):
            detail = "; ".join(
                f"{code} {_text(reply)}" for code, reply in error.recipients.values()
            )
        else:
            detail = str(error) or "no detail"
        if self._password:
            detail = detail.replace(self._password, _REDACTED)
        return (
            f"could not send mail through {self.security}://{self.host}:{self.port}: "
            f"{type(error).__name__}: {detail}"
        )


def _transient(error: BaseException) -> bool:
    """Whether the same message may be accepted if sent again later."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(error, (ssl.SSLCertVerificationError, smtplib.SMTPException)):
        return False  # configuration: retrying cannot help
    return isinstance(error, OSError)  # refused, reset or timed-out connections


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _quit_quietly(client: smtplib.SMTP) -> None:
    # Once send_message returns the server has the message: a failed QUIT must not make the
    # job retry and send it twice.
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


class ConsoleMailer:
    """Write each email to its own ``.eml`` file instead of sending it (embedded profile)."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = Path(directory)
        self.sender = sender

    def __repr__(self) -> str:
        return f"ConsoleMailer({str(self.directory)!r})"

    def send(self, email: Email) -> None:
        """Save ``email`` under the outbox directory and log where it went."""
        message = build_message(email, self.sender, readable=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # 0600 from the first byte: the file holds a live reset link.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
        except OSError as error:
            raise MailError(
                f"could not write mail to {self.directory}: {error}", transient=True
            ) from error
        logger.info(
            "mail to a recipient at %s not sent (no SMTP_URL), written to %s",
            email.recipient_domain,
            path,
        )


class MemoryMailer:
    """Keep sent emails in ``outbox`` for tests to inspect."""

    def __init__(self) -> None:
        self.outbox: list[Email] = []

    def send(self, email: Email) -> None:
        """Append ``email`` to the outbox."""
        self.outbox.append(email)


def init_mail(app: Flask) -> None:
    """Choose the app's mail backend from its config and store it in ``app.extensions``."""
    config = app.config
    smtp_url: str | None = config.get("SMTP_URL") or None
    backend = config.get("MAIL_BACKEND") or ("smtp" if smtp_url else "console")
    if backend not in BACKENDS:
        raise ConfigError({"MAIL_BACKEND": f"must be one of {', '.join(BACKENDS)}"})
    sender: str = config["MAIL_FROM"]

    instance: Mailer
    if backend == "smtp":
        if not smtp_url:
            raise ConfigError({"SMTP_URL": "required when MAIL_BACKEND is 'smtp'"})
        try:
            instance = SmtpMailer.from_url(smtp_url, sender)
        except ValueError as error:
            raise ConfigError({"SMTP_URL": str(error)}) from None
    elif backend == "console":
        instance = ConsoleMailer(Path(app.instance_path) / "outbox", sender)
    else:
        instance = MemoryMailer()

    if backend != "smtp" and config.get("SET2TRACKS_ENV") == PRODUCTION:
        # Production still starts (sign-in works without mail), but say it once, at start-up.
        logger.warning("emails are not delivered: mail backend is %r, set SMTP_URL", backend)
    app.extensions[EXTENSION_KEY] = instance


def mailer(app: Flask | None = None) -> Mailer:
    """Return the mail backend of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    instance: Mailer = target.extensions[EXTENSION_KEY]
    return instance


def deliver(email: Email) -> None:
    """Send ``email`` from a job: raise a transient failure (to retry), log a permanent one."""
    try:
        mailer().send(email)
    except MailError as error:
        if error.transient:
            raise
        logger.error(
            "email %r to a recipient at %s not sent: %s",
            email.subject,
            email.recipient_domain,
            error,
        )
