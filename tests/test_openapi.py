"""The OpenAPI document: valid, complete, and true to what ``/api/v1`` answers.

The schemathesis proof calls the app in-process (WSGI, same thread), so the rows the
factories flush into the test's transaction are what the API reads.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from set2tracks.auth import services
from set2tracks.auth.services import create_api_token
from set2tracks.extensions import db
from set2tracks.sets.models import FoundBy, SetSource
from tests.factories import (
    ChannelFactory,
    DjSetFactory,
    GenreFactory,
    LabelFactory,
    SetTrackFactory,
    SubmissionFactory,
    TrackFactory,
    UserFactory,
)

OPENAPI_PATH = "/api/v1/openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# flask-smorest's own blueprint serves the document (and the docs UIs when enabled).
DOCS_BLUEPRINT = "api-docs"

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
EXAMPLES_PER_RUN = 150  # per operation and generation mode
MIN_CASES = 1_000
# What a token holder's POSTs must meet at least once, where it is not "created" and "invalid".
POST_ANSWERS = {
    "/api/v1/submissions": {202, 422},  # accepted for processing
    "/api/v1/sets/{set_id}/publish": {200, 404},  # their own set, anyone else's
    "/api/v1/sets/{set_id}/unpublish": {200, 404},
}
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_TEMPLATE_PARAMETER = re.compile(r"{([^{}]+)}")


def openapi_path(rule: str) -> str:
    """Turn a Flask rule (``/sets/<int:set_id>``) into an OpenAPI path (``/sets/{set_id}``)."""
    return _CONVERTER.sub(r"{\1}", rule)


def test_openapi_path_converts_flask_converters() -> None:
    assert openapi_path("/api/v1/sets/<int:set_id>") == "/api/v1/sets/{set_id}"
    assert openapi_path("/a/<name>/b/<path:rest>") == "/a/{name}/b/{rest}"


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(OPENAPI_PATH)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_openapi_document_is_valid(document: dict[str, Any]) -> None:
    validate(document)

    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Set2Tracks API"


def test_submitting_documents_every_answer_it_gives(document: dict[str, Any]) -> None:
    """A client needs each of them: quotas (429 with when), CSRF (400), limits (413)..."""
    submit = document["paths"]["/api/v1/submissions"]["post"]
    responses = submit["responses"]
    already_there = responses["200"]["content"]["application/json"]["schema"]["oneOf"]

    assert {"200", "202", "400", "401", "404", "413", "415", "422", "429"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    assert "CSRF" in responses["400"]["description"]
    assert {"$ref": "#/components/schemas/SubmissionProgress"} in already_there
    progress = document["components"]["schemas"]["SubmissionProgress"]["properties"]
    assert set(progress) == {"id", "status", "stage", "progress"}


def api_routes(app: Flask) -> set[tuple[str, str]]:
    """Return every (OpenAPI path, method) the app serves under ``/api/v1``."""
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith(f"{DOCS_BLUEPRINT}."):
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served.add((openapi_path(rule.rule), method.lower()))
    return served


def test_every_api_route_is_documented_and_nothing_else(
    app: Flask, document: dict[str, Any]
) -> None:
    served = api_routes(app)
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }

    assert served, "no route under /api/v1: the API blueprints are not registered"
    assert not served - documented, (
        f"routes missing from the document: {sorted(served - documented)}"
    )
    assert not documented - served, f"documented, not served: {sorted(documented - served)}"


@dataclass
class Catalogue:
    """Ids the detail routes should find (200) or hide (404), by path parameter name."""

    visible: dict[str, list[int]]
    hidden: dict[str, list[int]]
    user_id: int


@pytest.fixture
def catalogue() -> Catalogue:
    """A few published sets with channels and tracklists, tracks with labels and genres."""
    house, techno = GenreFactory(name="House"), GenreFactory(name="Techno")
    ninja = LabelFactory(name="Ninja Tune")
    glue = TrackFactory(
        title="Glue",
        artist="Bicep",
        album="Bicep",
        label=ninja,
        genres=[house, techno],
        release_date=date(2017, 9, 1),
        release_year=2017,
        isrc="GBCFB1700486",
        spotify_id="2aJDlirz6v2a4HREki98cP",
        set_count=2,
    )
    strings = TrackFactory(title="Strings of Life", artist="Rhythim Is Rhythim", genres=[techno])
    boiler_room = ChannelFactory(name="Boiler Room", follower_count=4_200_000)
    peak = DjSetFactory(
        title="Peak time at the warehouse",
        channel=boiler_room,
        thumbnail_url="https://i.ytimg.com/vi/vid/hqdefault.jpg",
        track_count=2,
        coverage=0.5,
    )
    SetTrackFactory(dj_set=peak, position=0, track=glue, start_seconds=0, end_seconds=300)
    SetTrackFactory(
        dj_set=peak, position=1, track=strings, start_seconds=300, end_seconds=640, speed=1.04
    )
    SetTrackFactory(
        dj_set=peak, position=2, track=None, start_seconds=640, end_seconds=700, found_by=None
    )
    sunrise = DjSetFactory(title="Sunrise", channel=ChannelFactory(name="Cercle"))
    SetTrackFactory(dj_set=sunrise, position=0, track=glue, found_by=FoundBy.LIBRARY)
    user = UserFactory(email="dj@example.com")
    # The token holder's own recording: theirs to publish and unpublish.
    upload = DjSetFactory(
        title="Basement tape",
        source=SetSource.UPLOAD,
        video_id=None,
        channel=None,
        submitted_by=user,
    )
    draft = DjSetFactory(title="Not yet", is_published=False, published_at=None)
    hidden = DjSetFactory(title="Taken down", is_hidden=True)
    submission = SubmissionFactory(user=user, video_id="mySubmitted")
    db.session.commit()  # token creation runs with no writes of the caller pending
    tokens = [create_api_token(user.id, f"script {n}").id for n in range(3)]
    # The views share the test's session: a 500 rolls it back, and would take these rows
    # with it. Committing releases the savepoint into the test's outer transaction.
    db.session.commit()
    return Catalogue(
        visible={
            "set_id": [peak.id, sunrise.id, upload.id],
            "track_id": [glue.id, strings.id],
            "token_id": tokens,
            "submission_id": [submission.id],
        },
        hidden={"set_id": [draft.id, hidden.id]},
        user_id=user.id,
    )


@dataclass
class Finding:
    operation: str
    failure: str
    title: str
    status: int | None
    request: str
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.operation} [{self.failure}] {self.title}\n"
            f"    request:  {self.request}\n"
            f"    response: {self.status}\n"
            f"    {self.detail}"
        )


@dataclass
class Run:
    """What the proof did: cases per operation and mode, statuses seen, distinct failures."""

    credentials: Callable[[], dict[str, str]] = dict
    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    findings: dict[tuple[str, str, str, int | None], Finding] = field(default_factory=dict)

    def record(self, case: Case, mode: GenerationMode) -> None:
        label = case.operation.label
        self.cases[(label, mode.value)] += 1
        try:
            response = case.call(headers=self.credentials())
        except Exception as error:  # the app raised instead of answering
            self.add(case, None, "exception", type(error).__name__, repr(error)[:300])
            return
        self.statuses.setdefault(label, Counter())[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                self.add_failure(case, response, failure)
        except Failure as failure:
            self.add_failure(case, response, failure)

    def add_failure(self, case: Case, response: Response, failure: Failure) -> None:
        body = response.content.decode(errors="replace")[:300]
        detail = f"{failure.message.strip()[:400]}\n    body: {body}"
        self.add(case, response.status_code, type(failure).__name__, failure.title, detail)

    def add(self, case: Case, status: int | None, kind: str, title: str, detail: str) -> None:
        key = (case.operation.label, kind, title, status)
        if key not in self.findings:
            request = f"{case.method} {case.formatted_path} query={case.query!r}"
            request += f"\n    {case.as_curl_command()}"
            self.findings[key] = Finding(case.operation.label, kind, title, status, request, detail)


def strategies(
    operation: APIOperation, mode: GenerationMode, catalogue: Catalogue
) -> Iterator[st.SearchStrategy[Case]]:
    yield operation.as_strategy(mode)
    if mode is not GenerationMode.POSITIVE:
        return
    # Ids generated at random almost never exist: also ask for the seeded ones by name.
    names = _TEMPLATE_PARAMETER.findall(operation.path)
    for known in (catalogue.visible, catalogue.hidden):
        for name in names:
            for value in known.get(name, []):
                yield operation.as_strategy(mode, path_parameters={name: value})


def explore(run: Run, strategy: st.SearchStrategy[Case], mode: GenerationMode) -> None:
    """Call the app with every case ``strategy`` yields, recording instead of stopping."""

    @settings(
        max_examples=EXAMPLES_PER_RUN,
        derandomize=True,
        database=None,
        deadline=None,
        # Failures are collected, not raised: nothing to shrink.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: Case) -> None:
        run.record(case, mode)

    call()


def _operations(app: Flask) -> list[APIOperation]:
    schema: OpenApiSchema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read an operation: {result.err()}"
        operations.append(result.ok())
    assert len(operations) == len(api_routes(app))
    return operations


def _signed_in(operation: APIOperation) -> bool:
    return {} not in operation.definition.raw.get("security", [{}])


def _takes_tokens(operation: APIOperation) -> bool:
    return any("bearer" in option for option in operation.definition.raw.get("security", [{}]))


def _explore_all(run: Run, operations: list[APIOperation], catalogue: Catalogue) -> str:
    started = time.monotonic()
    for operation in operations:
        for mode in MODES:
            explore(run, st.one_of(*strategies(operation, mode, catalogue)), mode)
    elapsed = time.monotonic() - started
    total = sum(run.cases.values())
    return (
        f"{total} cases in {elapsed:.1f}s; per operation and mode: {dict(run.cases)}; "
        f"statuses: { {label: dict(seen) for label, seen in run.statuses.items()} }"
    )


def _assert_no_findings(run: Run, summary: str) -> None:
    findings = "\n".join(str(finding) for finding in run.findings.values())
    assert not run.findings, f"{len(run.findings)} distinct failures\n{findings}\n\n{summary}"


def test_api_answers_as_documented_to_anonymous_clients(app: Flask, catalogue: Catalogue) -> None:
    operations = _operations(app)
    run = Run()

    summary = _explore_all(run, operations, catalogue)

    assert sum(run.cases.values()) >= MIN_CASES, summary
    for operation in operations:
        seen = set(run.statuses.get(operation.label, ()))
        if _signed_in(operation):
            assert seen <= {400, 401, 404, 405, 413, 415, 422}, f"{operation.label}: {summary}"
            # A browser-only operation stops a client without a session at its CSRF check.
            refusal = 401 if _takes_tokens(operation) else 400
            assert refusal in seen, f"{operation.label} must refuse anonymous clients: {summary}"
        elif "{" in operation.path:
            assert {200, 404} <= seen, f"{operation.label} should find and miss: {summary}"
        else:
            assert {200, 422} <= seen, f"{operation.label} should list and reject: {summary}"
    _assert_no_findings(run, summary)


def test_api_answers_as_documented_to_a_token_holder(app: Flask, catalogue: Catalogue) -> None:
    operations = _operations(app)
    bearer: dict[str, str] = {}

    def credentials() -> dict[str, str]:
        # DELETE cases may revoke the very token in use: issue another when that happens.
        if not bearer or services.user_for_api_token(bearer["value"]) is None:
            bearer["value"] = create_api_token(catalogue.user_id, "schemathesis").secret
        return {"Authorization": f"Bearer {bearer['value']}"}

    run = Run(credentials=credentials)

    summary = _explore_all(run, operations, catalogue)

    assert sum(run.cases.values()) >= MIN_CASES, summary
    for operation in operations:
        seen = set(run.statuses.get(operation.label, ()))
        if _signed_in(operation) and not _takes_tokens(operation):
            assert 403 in seen, f"{operation.label} must refuse API tokens: {summary}"
            assert not seen & {200, 201, 204}, f"{operation.label} let a token in: {summary}"
        elif operation.method.upper() == "POST":
            expected = POST_ANSWERS.get(operation.path, {201, 422})
            assert expected <= seen, f"{operation.label} should succeed and refuse: {summary}"
        elif operation.method.upper() == "DELETE":
            assert {204, 404} <= seen, f"{operation.label} should revoke and miss: {summary}"
        else:
            assert 200 in seen, f"{operation.label} should answer a token holder: {summary}"
    _assert_no_findings(run, summary)
