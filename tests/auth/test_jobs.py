"""The account email jobs: retried on transient mail failures, on the real runners."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from rq import Queue

from set2tracks import create_app
from set2tracks.auth import jobs
from set2tracks.auth.services import register, request_password_reset
from set2tracks.clients.mail import MemoryMailer, mailer
from set2tracks.extensions import db
from set2tracks.queues import SERIALIZER, inline_runner
from tests.auth.helpers import csrf_token
from tests.backends import Backends
from tests.clients.test_mail import free_port
from tests.conftest import base_config
from tests.factories import UserFactory

RESET_JOB = "set2tracks.auth.jobs.send_password_reset"


@dataclass
class FlakyServer:
    """An SMTP handler that answers "try again later" to the first ``failures`` recipients."""

    failures: int
    attempts: int = 0
    delivered: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.attempts += 1
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        if self.attempts <= self.failures:
            return "451 4.3.0 mail system busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def flaky_smtp(request: pytest.FixtureRequest) -> Iterator[tuple[FlakyServer, int]]:
    handler = FlakyServer(failures=getattr(request, "param", 2))
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the email jobs' three retries but without their minutes of backoff."""
    for job in (jobs.send_password_reset, jobs.send_email_confirmation, jobs.send_account_exists):
        monkeypatch.setattr(job, "retry_intervals", (0, 0, 0))  # only on a @retried job


def _ask_for_a_reset(email: str) -> None:
    UserFactory(email=email)
    request_password_reset(email)


def _register(email: str) -> None:
    register(email, "Ada", "a long and unusual passphrase", None)


def _register_a_taken_email(email: str) -> None:
    UserFactory(email=email)
    register(email, "Ada", "a long and unusual passphrase", None)


@pytest.mark.parametrize(
    "promise",
    [_ask_for_a_reset, _register, _register_a_taken_email],
    ids=["reset", "confirmation", "account-exists"],
)
def test_transient_smtp_failures_are_retried_until_the_mail_is_sent(
    app: Flask,
    backends: Backends,
    tmp_path: Path,
    flaky_smtp: tuple[FlakyServer, int],
    no_wait: None,
    promise: Callable[[str], None],
) -> None:
    """Every email the screen promised ("check your inbox") survives a busy mail server."""
    server, port = flaky_smtp
    smtp_app = create_app(
        base_config(backends, tmp_path, SMTP_URL=f"smtp://127.0.0.1:{port}", SIGNUP_MODE="open")
    )

    with smtp_app.test_request_context():
        promise("ada@example.org")
        assert inline_runner().join(timeout=30)

    assert server.attempts == 3  # two "try again later", then accepted
    assert server.delivered == ["ada@example.org"]


@pytest.mark.parametrize("flaky_smtp", [0], indirect=True)
def test_a_permanent_refusal_is_logged_once_and_not_retried(
    app: Flask,
    backends: Backends,
    tmp_path: Path,
    flaky_smtp: tuple[FlakyServer, int],
    no_wait: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, port = flaky_smtp
    smtp_app = create_app(base_config(backends, tmp_path, SMTP_URL=f"smtp://127.0.0.1:{port}"))
    user = UserFactory(email="nobody@example.org")

    with smtp_app.test_request_context(), caplog.at_level(logging.WARNING):
        request_password_reset(user.email)
        assert inline_runner().join(timeout=30)

    assert server.attempts == 1
    assert server.delivered == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "550" in errors[0].getMessage()


@pytest.mark.redis
def test_reset_email_goes_to_rq_with_retries(
    app: Flask, backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    rq_app = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq"))
    user = UserFactory(email="ada@example.org")

    with rq_app.test_request_context():
        request_password_reset(user.email)

    queue = Queue("high", connection=Redis.from_url(redis_url), serializer=SERIALIZER)
    (job,) = queue.jobs
    assert job.args == [RESET_JOB, user.id]
    assert job.retries_left == 3
    assert job.retry_intervals == [30, 120, 600]


def test_embedded_job_thread_really_sends_the_reset_email(
    backends: Backends, tmp_path: Path
) -> None:
    # Its own SQLite file: the job thread must not share the test's connection.
    threaded = create_app(
        base_config(
            backends,
            tmp_path,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'threaded.db'}",
            MAIL_BACKEND="memory",
            INLINE_JOBS_THREADED=True,
        )
    )
    with threaded.app_context():
        upgrade()
        UserFactory(email="ada@example.org")
        db.session.commit()
    client = threaded.test_client()

    sent = client.post(
        "/reset-password", data={"email": "ada@example.org", "csrf_token": csrf_token(client)}
    )
    with threaded.app_context():
        runner = inline_runner()
        assert runner.threaded
        assert runner.join(timeout=20)
        outbox = mailer()
        db.engine.dispose()

    assert sent.status_code == 200
    assert isinstance(outbox, MemoryMailer)
    assert [email.to for email in outbox.outbox] == ["ada@example.org"]
    assert "/reset-password/" in outbox.outbox[0].text
