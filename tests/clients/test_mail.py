"""Mail: SMTP against a real server on loopback, the console outbox, backend selection."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from set2tracks import create_app
from set2tracks.clients.mail import (
    ConsoleMailer,
    Email,
    MailError,
    MemoryMailer,
    SmtpMailer,
    init_mail,
    mailer,
)
from set2tracks.config import ConfigError
from tests.backends import Backends
from tests.conftest import base_config

USER = "mailer@set2tracks.example"
# Characters that must be percent-encoded in a URL, to prove the URL is decoded.
PASSWORD = "p@ss:w/rd%42"
PASSWORD_IN_URL = "p%40ss%3Aw%2Frd%2542"
SENDER = "Set2Tracks <noreply@set2tracks.example>"
RESET_LINK = "https://set2tracks.example/reset-password?token=" + "Zx9-" * 20
RESET = Email(
    to="ada@example.org",
    subject="Reset your Set2Tracks password",
    text=f"Hello Ada,\n\nOpen this link within 30 minutes:\n{RESET_LINK}\n\nSet2Tracks\n",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: bytes | None
    tls: bool


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what the server accepted."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        auth = session.auth_data if session.authenticated else None
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                login=auth.login if isinstance(auth, LoginPassword) else None,
                # Set for SMTPS and after STARTTLS alike (session.ssl is only after STARTTLS).
                tls=server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers "535" itself instead of leaving the client waiting.
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    port: int
    recorder: Recorder


def start_server(**options: Any) -> tuple[Controller, SmtpServer]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, authenticator=authenticator, **options
    )
    controller.start()
    return controller, SmtpServer(port, recorder)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback that accepts AUTH without TLS."""
    controller, server = start_server(auth_require_tls=False)
    yield server
    controller.stop()


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, trusted by the client context only."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Tls(server=server, client=ssl.create_default_context(cafile=str(cert_file)))


def body(message: EmailMessage) -> str:
    """Return the text of a message that crossed SMTP, whose lines end in CRLF."""
    content: str = message.get_content()
    return content.replace("\r\n", "\n")


def smtp_mailer(port: int, scheme: str = "smtp", **options: Any) -> SmtpMailer:
    url = f"{scheme}://{USER.replace('@', '%40')}:{PASSWORD_IN_URL}@127.0.0.1:{port}"
    return SmtpMailer.from_url(url, SENDER, **options)


def test_smtp_mailer_logs_in_and_delivers_the_message(smtp_server: SmtpServer) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    smtp_mailer(smtp_server.port).send(RESET)

    (received,) = smtp_server.recorder.received
    assert received.login == USER.encode()
    assert received.mail_from == "noreply@set2tracks.example"
    assert received.rcpt_tos == ["ada@example.org"]
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "Reset your Set2Tracks password"
    sent_at = parsedate_to_datetime(message["Date"])
    assert sent_at.utcoffset() == timedelta(0)
    assert before <= sent_at <= datetime.now(UTC)
    assert message["Message-ID"].startswith("<")
    assert message["Message-ID"].endswith("@set2tracks.example>")
    assert body(message) == RESET.text


def test_each_message_gets_its_own_message_id(smtp_server: SmtpServer) -> None:
    sender = smtp_mailer(smtp_server.port)

    sender.send(RESET)
    sender.send(RESET)

    first, second = smtp_server.recorder.received
    assert first.message["Message-ID"] != second.message["Message-ID"]


def test_smtp_mailer_logs_the_recipient_domain_and_subject_only(
    smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        smtp_mailer(smtp_server.port).send(RESET)

    # Only our own lines: the test server's log quotes the whole SMTP dialogue.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("set2tracks"))
    assert "example.org" in logged
    assert "Reset your Set2Tracks password" in logged
    assert "ada@" not in logged
    assert "token" not in logged
    assert PASSWORD not in logged
    assert PASSWORD_IN_URL not in logged


def test_connection_refused_raises_mail_error_without_the_password() -> None:
    port = free_port()

    with pytest.raises(MailError) as caught:
        smtp_mailer(port).send(RESET)

    text = str(caught.value)
    assert f"127.0.0.1:{port}" in text
    assert "ConnectionRefusedError" in text
    assert PASSWORD not in text
    assert PASSWORD_IN_URL not in text
    # Nothing chained for a traceback to print either.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert caught.value.transient  # the server may be back in a minute: retry


def test_rejected_login_raises_mail_error_without_the_password(smtp_server: SmtpServer) -> None:
    url = f"smtp://{USER}:wrong-{PASSWORD_IN_URL}@127.0.0.1:{smtp_server.port}"

    with pytest.raises(MailError) as caught:
        SmtpMailer.from_url(url, SENDER).send(RESET)

    assert "535" in str(caught.value)
    assert not caught.value.transient  # the same credentials fail every time
    assert "wrong-" not in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert smtp_server.recorder.received == []


def test_refused_recipient_raises_mail_error(smtp_server: SmtpServer) -> None:
    with pytest.raises(MailError, match="550") as caught:
        smtp_mailer(smtp_server.port).send(
            Email(to="nobody@example.org", subject="Hi", text="Hello")
        )

    assert not caught.value.transient


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_schemes_encrypt_before_logging_in(tls: Tls, scheme: str) -> None:
    # With STARTTLS the server refuses AUTH before TLS: delivery proves the order. aiosmtpd
    # counts only STARTTLS as TLS for AUTH, so SMTPS needs auth_require_tls=False.
    options: dict[str, Any] = (
        {"ssl_context": tls.server, "auth_require_tls": False}
        if scheme == "smtps"
        else {"tls_context": tls.server, "require_starttls": True}
    )
    controller, server = start_server(**options)
    try:
        smtp_mailer(server.port, scheme, ssl_context=tls.client).send(RESET)
    finally:
        controller.stop()

    (received,) = server.recorder.received
    assert received.tls
    assert received.login == USER.encode()
    assert body(received.message) == RESET.text


def test_starttls_never_falls_back_to_plain_text(smtp_server: SmtpServer) -> None:
    with pytest.raises(MailError, match="STARTTLS"):
        smtp_mailer(smtp_server.port, "smtp+starttls").send(RESET)

    assert smtp_server.recorder.received == []


def test_tls_rejects_a_certificate_it_does_not_trust(tls: Tls) -> None:
    controller, server = start_server(ssl_context=tls.server)
    try:
        with pytest.raises(MailError, match="SSLCertVerificationError"):
            smtp_mailer(server.port, "smtps").send(RESET)
    finally:
        controller.stop()

    assert server.recorder.received == []


@pytest.mark.parametrize(
    ("url", "security", "port", "username", "password"),
    [
        ("smtp://relay.internal", "smtp", 25, None, None),
        ("smtps://u:p@mail.example.com", "smtps", 465, "u", "p"),
        (
            "smtp+starttls://apikey:s%2Fecret@mail.example.com",
            "smtp+starttls",
            587,
            "apikey",
            "s/ecret",
        ),
        ("smtp+starttls://u:p@mail.example.com:2525", "smtp+starttls", 2525, "u", "p"),
    ],
)
def test_from_url_reads_scheme_port_and_decoded_credentials(
    url: str, security: str, port: int, username: str | None, password: str | None
) -> None:
    built = SmtpMailer.from_url(url, SENDER)

    assert (built.security, built.port, built.username) == (security, port, username)
    assert built._password == password
    assert "secret" not in repr(built)
    assert built.timeout == 10


def test_email_refuses_line_breaks_in_headers() -> None:
    with pytest.raises(ValueError, match="subject"):
        Email(to="ada@example.org", subject="Hi\r\nBcc: eve@example.org", text="x")


def test_console_mailer_writes_a_private_eml_file_and_logs_its_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = tmp_path / "instance" / "outbox"

    with caplog.at_level(logging.INFO, logger="set2tracks.clients.mail"):
        ConsoleMailer(outbox, SENDER).send(RESET)

    (written,) = outbox.glob("*.eml")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    # A developer opens the file and follows the link: it must be there verbatim.
    assert RESET_LINK in written.read_text()
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == RESET.subject
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"].endswith("@set2tracks.example>")
    assert message.get_content() == RESET.text
    (record,) = [r for r in caplog.records if r.name == "set2tracks.clients.mail"]
    assert record.levelno == logging.INFO
    assert str(written) in record.getMessage()
    assert "token" not in record.getMessage()
    assert "Hello Ada" not in record.getMessage()


def test_console_mailer_keeps_every_message(tmp_path: Path) -> None:
    console = ConsoleMailer(tmp_path / "outbox", SENDER)

    for _ in range(3):
        console.send(RESET)

    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_console_mailer_that_cannot_write_raises_mail_error(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the directory should be")

    with pytest.raises(MailError):
        ConsoleMailer(blocker, SENDER).send(RESET)


def test_memory_mailer_keeps_the_outbox() -> None:
    memory = MemoryMailer()

    memory.send(RESET)

    assert memory.outbox == [RESET]


def build_app(backends: Backends, tmp_path: Path, **overrides: Any) -> Any:
    settings = {"SMTP_URL": None, "MAIL_FROM": SENDER, **overrides}
    return create_app(base_config(backends, tmp_path, **settings))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ConsoleMailer),
        ({"SMTP_URL": "smtp+starttls://u:p@mail.example.com"}, SmtpMailer),
        ({"MAIL_BACKEND": "memory", "SMTP_URL": "smtps://u:p@mail.example.com"}, MemoryMailer),
        ({"MAIL_BACKEND": "console", "SMTP_URL": "smtps://u:p@mail.example.com"}, ConsoleMailer),
        ({"SET2TRACKS_ENV": "production", "SMTP_URL": "smtps://u:p@mail.example.com"}, SmtpMailer),
    ],
)
def test_init_mail_picks_the_backend_the_config_asks_for(
    backends: Backends,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, Any],
    expected: type,
) -> None:
    app = build_app(backends, tmp_path, **overrides)
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="set2tracks.clients.mail"):
        init_mail(app)

    chosen = mailer(app)
    assert type(chosen) is expected
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with app.app_context():
        assert mailer() is chosen


def test_init_mail_builds_the_smtp_client_from_the_config(
    backends: Backends, tmp_path: Path
) -> None:
    app = build_app(
        backends, tmp_path, SMTP_URL=f"smtps://{USER}:{PASSWORD_IN_URL}@mail.example.com:2465"
    )

    init_mail(app)

    chosen = mailer(app)
    assert isinstance(chosen, SmtpMailer)
    assert (chosen.host, chosen.port, chosen.security) == ("mail.example.com", 2465, "smtps")
    assert (chosen.username, chosen.sender) == (USER, SENDER)


def test_embedded_profile_writes_mail_to_the_instance_outbox(
    backends: Backends, tmp_path: Path
) -> None:
    app = build_app(backends, tmp_path)

    init_mail(app)

    chosen = mailer(app)
    assert isinstance(chosen, ConsoleMailer)
    assert chosen.directory == Path(app.instance_path) / "outbox"


def test_production_without_smtp_still_works_but_warns_once(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(backends, tmp_path, SET2TRACKS_ENV="production")
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="set2tracks.clients.mail"):
        init_mail(app)

    assert isinstance(mailer(app), ConsoleMailer)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not delivered" in warnings[0].getMessage()
    assert "SMTP_URL" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"MAIL_BACKEND": "smtp"}, "SMTP_URL"),
        ({"MAIL_BACKEND": "sendmail"}, "MAIL_BACKEND"),
        ({"SMTP_URL": "smtp://u:secret@mail.example.com:notaport"}, "SMTP_URL"),
    ],
)
def test_init_mail_rejects_an_unusable_configuration(
    backends: Backends, tmp_path: Path, overrides: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_app(backends, tmp_path, **overrides)

    assert variable in str(caught.value.message)
    assert "secret" not in str(caught.value.message)
