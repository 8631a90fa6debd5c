"""The interactive API documentation: Swagger UI served by the app itself, under our CSP."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

DOCS = "/api/docs"
OPENAPI_URL = "/api/v1/openapi.json"


class PageReferences(HTMLParser):
    """Collect what a page loads: script sources, stylesheets, icons and inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.icons: list[str] = []
        self.urls: list[str] = []
        self.inline_script = ""
        self.event_handlers: list[str] = []
        self.openapi_url: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.urls += [attributes[name] for name in ("src", "href") if name in attributes]
        self.event_handlers += [name for name in attributes if name.startswith("on")]
        if tag == "script":
            self._in_script = True
            if "src" in attributes:
                self.scripts.append(attributes["src"])
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes["href"])
        elif tag == "link" and attributes.get("rel") == "icon":
            self.icons.append(attributes["href"])
        if attributes.get("id") == "swagger-ui":
            self.openapi_url = attributes.get("data-openapi-url")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script += data.strip()


def page_references(client: FlaskClient) -> PageReferences:
    parser = PageReferences()
    parser.feed(client.get(DOCS).text)
    return parser


def test_docs_page_is_served_under_the_strict_csp(client: FlaskClient) -> None:
    response = client.get(DOCS)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


def test_docs_page_has_no_inline_script(client: FlaskClient) -> None:
    page = page_references(client)

    assert page.scripts
    assert page.inline_script == ""
    assert page.event_handlers == []


def test_docs_page_loads_only_same_origin_assets(client: FlaskClient) -> None:
    page = page_references(client)

    assert page.urls
    for url in page.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url


def test_docs_page_points_swagger_ui_at_the_openapi_document(client: FlaskClient) -> None:
    page = page_references(client)

    assert page.openapi_url == OPENAPI_URL
    document = client.get(OPENAPI_URL).json
    assert document is not None
    assert document["info"]["title"] == "Set2Tracks API"


def test_docs_page_loads_swagger_ui_and_our_initialiser(client: FlaskClient) -> None:
    page = page_references(client)

    names = [url.rsplit("/", 1)[-1] for url in page.scripts + page.stylesheets]
    assert names == [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "api-docs.js",
        "swagger-ui.css",
    ]
    assert not any(url.endswith(".map") for url in page.urls)


def test_every_script_and_stylesheet_is_served(client: FlaskClient) -> None:
    page = page_references(client)

    for url in page.scripts:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype in {"text/javascript", "application/javascript"}, url
        assert response.data
    for url in page.stylesheets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == "text/css", url
        assert response.data
    for url in page.icons:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == "image/png", url


def test_initialiser_reads_the_spec_url_from_the_page(client: FlaskClient) -> None:
    script = client.get("/static/js/api-docs.js").text

    assert "dataset.openapiUrl" in script
    assert "petstore" not in script


def test_swagger_ui_assets_are_cached_for_long(client: FlaskClient) -> None:
    response = client.get(f"{DOCS}/assets/swagger-ui-bundle.js")

    assert response.status_code == 200
    assert response.cache_control.public
    assert (response.cache_control.max_age or 0) >= 30 * 24 * 3600


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs/assets/../__init__.py",
        "/api/docs/assets/../../__init__.py",
        "/api/docs/assets/%2e%2e/x",
        "/api/docs/assets/%2e%2e/swagger-ui-4.15.5/swagger-ui.css",
        "/api/docs/assets/..%2fswagger-ui-4.15.5%2fswagger-ui.css",
        "/api/docs/assets/no-such-file.js",
        "/api/docs/assets/index.html",
        "/api/docs/assets/oauth2-redirect.html",
    ],
)
def test_nothing_outside_the_swagger_ui_assets_is_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404
