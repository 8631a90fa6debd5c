"""Logs: JSON lines, request ids, secrets never written."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks.auth import services
from set2tracks.auth.services import make_reset_token
from set2tracks.logs import REDACTED, RedactingFilter, redact
from tests.factories import UserFactory


def test_response_echoes_a_well_formed_request_id(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c2e-0001"})

    assert response.headers["X-Request-ID"] == "lb-7f3a9c2e-0001"


@pytest.mark.parametrize("incoming", ["", "short", "x" * 200, "with spaces in it", "<script>"])
def test_malformed_request_ids_are_replaced(client: FlaskClient, incoming: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": incoming})

    generated = response.headers["X-Request-ID"]
    assert generated != incoming
    assert len(generated) == 32


def test_each_request_writes_one_json_access_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="set2tracks.access"):
        client.get("/sets", headers={"X-Request-ID": "trace-abcdef123"})

    records = [r for r in caplog.records if r.name == "set2tracks.access"]
    assert len(records) == 1
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "set2tracks")
    line = json.loads(handler.format(records[0]))
    assert line["message"] == "GET /sets 200"
    assert line["request_id"] == "trace-abcdef123"
    assert line["status"] == 200
    assert line["route"] == "/sets"
    assert line["level"] == "INFO"
    assert line["logger"] == "set2tracks.access"
    assert line["timestamp"].endswith("+00:00")
    assert isinstance(line["duration_ms"], float)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("login failed password=hunter2 for ada", "hunter2"),
        ('{"password": "hunter2"}', "hunter2"),
        ("Authorization: Bearer s2t_abcdef0123456789", "s2t_abcdef0123456789"),
        ("connecting to postgresql://app:pgsecret@db:5432/x", "pgsecret"),
        ("reset token=AbC123xyz sent", "AbC123xyz"),
        ("Cookie: s2t_session=0123456789abcdef", "0123456789abcdef"),
        ("api_key: 'k-99887766'", "k-99887766"),
        ("created s2t_Zm9vYmFyYmF6cXV4MTIzNDU2 for ada", "s2t_Zm9vYmFyYmF6cXV4MTIzNDU2"),
        ("Authorization: Basic YWRhOmh1bnRlcjI=", "YWRhOmh1bnRlcjI="),
        ("Proxy-Authorization: Bearer opaque-value-42", "opaque-value-42"),
        ("Cookie: theme=dark; s2t_remember=remember-canary-77", "remember-canary-77"),
        ("Cookie: s2t_session=abc; __Host-remember=remember-canary-78", "remember-canary-78"),
        ("{'Cookie': 'a=1; other=cookie-canary-79'}", "cookie-canary-79"),
        ("GET /reset-password/eyJ1IjoxfQ.Z2kZ.sig-canary 200", "eyJ1IjoxfQ.Z2kZ.sig-canary"),
        ("GET /invite/invite-canary-code-0123 404", "invite-canary-code-0123"),
        ("GET /register?invite=invite-canary-0456 HTTP/1.1", "invite-canary-0456"),
        ("GET /register?next=%2Fsets&invite=invite-canary-0457 200", "invite-canary-0457"),
        ('{"invite": "invite-canary-0458"}', "invite-canary-0458"),
        ("opened https://set2tracks.example/register?code=code-canary-0459", "code-canary-0459"),
        ("GET /register/confirm?confirm=confirm-canary-0460&x=1", "confirm-canary-0460"),
        ("GET /register/confirm?token=token-canary-0461 200", "token-canary-0461"),
    ],
)
def test_secrets_are_redacted_from_messages(text: str, secret: str) -> None:
    cleaned = redact(text)

    assert secret not in cleaned
    assert REDACTED in cleaned


def test_secret_looking_extra_fields_and_arguments_are_redacted() -> None:
    record = logging.LogRecord(
        "set2tracks.auth", logging.INFO, __file__, 1, "sent %s", ("password=hunter2",), None
    )
    record.smtp_password = "mailsecret"
    record.note = "token=abc123def"

    RedactingFilter().filter(record)

    assert "hunter2" not in record.getMessage()
    assert record.smtp_password == REDACTED
    assert "abc123def" not in record.note


def test_ordinary_text_is_left_alone() -> None:
    assert redact("GET /sets/42 200 in 12 ms") == "GET /sets/42 200 in 12 ms"
    assert redact("Basic plan, 3 sets") == "Basic plan, 3 sets"
    assert redact("GET /sets?sort=newest&page=2 200") == "GET /sets?sort=newest&page=2 200"
    assert redact("POST /admin/invites 302") == "POST /admin/invites 302"


def test_an_invite_code_in_a_logged_url_never_reaches_the_logs(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    invite_code = services.create_invite(UserFactory().id, email=None, days=7).secret

    with caplog.at_level(logging.DEBUG):
        page = client.get(f"/register?invite={invite_code}")
        # Anything logging the full URL (an error report, a proxy's line) is scrubbed too.
        logging.getLogger("set2tracks.test").warning("slow request: %s", page.request.url)

    assert page.status_code == 200
    assert invite_code in page.get_data(as_text=True)  # the form is filled in for the visitor
    written = "\n".join(_written(record) for record in caplog.records)
    assert "slow request: http://localhost/register?invite=[redacted]" in written
    assert invite_code not in written


def test_reset_and_invite_links_never_reach_the_logs(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    user = UserFactory()
    reset_token = make_reset_token(user)
    invite_code = services.create_invite(user.id, email=None, days=7).secret

    with caplog.at_level(logging.DEBUG):
        reset_page = client.get(f"/reset-password/{reset_token}")
        invite_page = client.get(f"/invite/{invite_code}")
        client.get(f"/invite/{invite_code}/trailing")  # no route: logged as its path

    assert reset_page.status_code == 200
    assert invite_page.status_code == 200
    written = "\n".join(_written(record) for record in caplog.records)
    assert reset_token not in written
    assert invite_code not in written
    access = [r for r in caplog.records if r.name == "set2tracks.access"]
    assert [r.getMessage() for r in access[:2]] == [
        "GET /reset-password/<token> 200",
        "GET /invite/<code> 200",
    ]


def _written(record: logging.LogRecord) -> str:
    """Return the line our handler writes for ``record``."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "set2tracks")
    assert handler.filter(record)
    return handler.format(record)


def test_tracebacks_are_scrubbed_too(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError("cannot connect to redis://:r3dis-pass@cache:6379 with token=abc123")
    except RuntimeError:
        logging.getLogger("set2tracks.test").exception("boom")
    record = next(r for r in caplog.records if r.name == "set2tracks.test")

    line = json.loads(_written(record))

    assert "RuntimeError" in line["exc_info"]
    assert "r3dis-pass" not in line["exc_info"]
    assert "abc123" not in line["exc_info"]


def test_no_secret_a_client_sends_reaches_the_logs(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    canaries = {
        "Authorization": "Bearer canary-bearer-0123456789",
        "Cookie": "s2t_session=canary-cookie-0123456789",
        "X-Api-Key": "canary-header-key-0123",
    }
    with caplog.at_level(logging.DEBUG):
        client.get("/api/v1/sets?api_key=canary-query-key-0123", headers=canaries)
        client.get("/no-such-page?password=canary-password-0123", headers=canaries)
        client.post("/api/v1/sets", json={"password": "canary-json-password"}, headers=canaries)

    written = "\n".join(_written(record) for record in caplog.records)
    assert "canary" not in written
