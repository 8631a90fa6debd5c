"""Links that leave the site (emails, invites, JSON-LD) use SITE_URL, never the request's Host."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from set2tracks import create_app
from set2tracks.clients.mail import MemoryMailer, mailer
from set2tracks.queues import inline_runner
from tests.auth.helpers import csrf_token, sign_in
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import DjSetFactory, SetTrackFactory, TrackFactory, UserFactory

SITE = "https://set2tracks.example"
FORGED_HOST = {"Host": "evil.example"}


def _post_from_forged_host(client: FlaskClient, url: str, data: dict[str, str]) -> TestResponse:
    """POST a form (with its CSRF token) to ``url`` with the Host header an attacker chose."""
    token = csrf_token(client)
    for cookie in list(client._cookies.values()):  # the browser's cookies, sent to that host
        client.set_cookie(cookie.key, cookie.value, domain="evil.example")
    return client.post(url, data={**data, "csrf_token": token}, headers=FORGED_HOST)


@pytest.fixture
def site_app(app: Flask, backends: Backends, tmp_path: Path) -> Flask:
    """An app whose public address is SITE, reached through a forged Host header."""
    return create_app(base_config(backends, tmp_path, SITE_URL=SITE, MAIL_BACKEND="memory"))


def test_invite_link_shown_to_the_admin_uses_site_url(site_app: Flask) -> None:
    client = site_app.test_client()
    sign_in(client, UserFactory(is_admin=True))

    created = _post_from_forged_host(client, "/admin/invites", {"email": "", "days": "7"})

    assert created.status_code == 201
    link = re.search(r'<code class="secret">([^<]+)</code>', created.text)
    assert link is not None
    assert link.group(1).startswith(f"{SITE}/invite/")


def test_reset_email_link_uses_site_url(site_app: Flask) -> None:
    user = UserFactory(email="ada@example.com")
    client = site_app.test_client()

    sent = _post_from_forged_host(client, "/reset-password", {"email": user.email})
    with site_app.app_context():
        assert inline_runner().join(timeout=10)
        outbox = mailer()
    assert isinstance(outbox, MemoryMailer)

    assert sent.status_code == 200
    assert len(outbox.outbox) == 1
    assert f"{SITE}/reset-password/" in outbox.outbox[0].text
    assert "evil.example" not in outbox.outbox[0].text


def test_json_ld_links_use_site_url(site_app: Flask) -> None:
    dj_set = DjSetFactory()
    SetTrackFactory(dj_set=dj_set, position=0, track=TrackFactory(), start_seconds=65)

    page = site_app.test_client().get(f"/sets/{dj_set.id}", headers=FORGED_HOST)

    payload = re.search(r'<script type="application/ld\+json"[^>]*>(.*?)</script>', page.text, re.S)
    assert payload is not None
    clip = json.loads(payload.group(1))["hasPart"][0]
    assert clip["url"] == f"{SITE}/sets/{dj_set.id}?t=65"
