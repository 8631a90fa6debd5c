"""Absolute links to the site: emails, invite links, JSON-LD.

Always built from ``SITE_URL`` (required in production), never from the request's Host
header, which a client chooses: a reset link must not point at an attacker's host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app


def site_url() -> str:
    """Return the public base URL: ``SITE_URL``, else (embedded) the address ``make run`` serves."""
    configured: str | None = current_app.config.get("SITE_URL")
    return configured or f"http://127.0.0.1:{current_app.config['PORT']}"


def external_url(endpoint: str, **values: Any) -> str:
    """Build the absolute URL of ``endpoint`` on the public site."""
    base = urlsplit(site_url())
    adapter = current_app.url_map.bind(
        base.netloc, url_scheme=base.scheme, script_name=base.path or "/"
    )
    return adapter.build(endpoint, values, force_external=True)
