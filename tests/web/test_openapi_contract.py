"""The REST API against its own OpenAPI document, fuzzed by schemathesis.

A real hub process (SQLite) is started once for the module on loopback, seeded with a few
customers and conversations (ids 1..5), and every documented operation is called with generated
valid and invalid input. What must hold for any input: no 5xx, only documented status codes and
content types, and bodies that match the documented schemas.

Two runs over every operation: the document as served (valid and invalid input, both generation
modes), and a copy narrowed to the seeded data (valid input only) so that most requests get past
404 and "unknown channel" into the stores.

Credentials: POST /api/v1/messages needs the integration role, the other routes an agent/admin
role; each case gets the bearer token its route needs. Logout gets a fresh session per case so it
never ends the one the other cases use. SERVICEHUB_CONTRACT_EXAMPLES raises the examples per
operation (default 40) for a longer bug hunt.
"""

from __future__ import annotations

import copy
import json
import os
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.auth.accounts import create_agent, create_token
from hub.store.db import make_engine
from hub.store.migrate import upgrade
from hub.web.app import openapi_document
from tests.support.serverproc import HubProcess, free_port

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "contract-admin@example.com"
ADMIN_PASSWORD = "contract admin password"
SEEDED = 5
HTTP_LINE_LIMIT = 8190  # aiohttp: max_line_size and max_field_size
MAX_EXAMPLES = int(os.environ.get("SERVICEHUB_CONTRACT_EXAMPLES", "40"))

schema = schemathesis.openapi.from_dict(openapi_document())


def _focused_document() -> dict:
    """The same document, with inputs narrowed to what the seeded hub holds (ids 1..8, known
    channels, recognisable addresses), so that valid requests reach the stores instead of
    stopping at 404 or "unknown channel". Responses are checked against the same schemas."""
    doc = copy.deepcopy(openapi_document())
    near = {"type": "integer", "minimum": 1, "maximum": SEEDED + 3}
    for item in doc["paths"].values():
        for op in item.values():
            # A random cursor is only ever refused; the list is exercised without one.
            op["parameters"] = [p for p in op.get("parameters", []) if p["name"] != "cursor"]
            for param in op["parameters"]:
                if param["in"] == "path" or param["name"] == "customer":
                    param["schema"] = near
    comps = doc["components"]["schemas"]

    def narrow(model: str, prop: str, schema: dict) -> None:
        if prop in comps.get(model, {}).get("properties", {}):
            comps[model]["properties"][prop] = schema

    # A message needs text or html with something in it (a model validator the schema cannot say).
    narrow("MessageIn", "text", {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "[A-Za-z0-9]"})
    if "MessageIn" in comps:
        comps["MessageIn"]["required"] = sorted({*comps["MessageIn"].get("required", []), "text"})
    narrow("MessageIn", "channel", {"enum": ["api", "email", "webform"]})
    narrow("MessageIn", "conversation_id", {"anyOf": [near, {"type": "null"}]})
    narrow("SenderIn", "address", {
        "enum": ["seed1@example.com", "New.Person@Example.COM", "+14155550123", "telegram:12345", "web-visitor-7", "seed2@example.com"]
    })
    narrow("ConversationPatch", "status", {"enum": ["open", "pending", "resolved", "closed"]})
    narrow("ConversationPatch", "priority", {"enum": ["low", "normal", "high", "urgent"]})
    narrow("ConversationPatch", "assignee_id", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 3}, {"type": "null"}]})
    # Versions near the seeded conversations' own, so that conditional changes are both written and refused (409).
    narrow("ConversationPatch", "version", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 4}, {"type": "null"}]})
    narrow("MergeIn", "customer_id", near)
    return doc


focused = schemathesis.openapi.from_dict(_focused_document())
focused.config.generation.update(modes=[GenerationMode.POSITIVE])

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _request(url: str, *, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")


class LiveHub:
    def __init__(self, server: HubProcess, integration: str):
        self.server = server
        self.url = server.url
        self.integration = {"Authorization": f"Bearer {integration}"}
        self.admin = {"Authorization": f"Bearer {self.login()}"}

    def login(self) -> str:
        status, body = _request(f"{self.url}/api/v1/auth/login", method="POST", body={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert status == 200, body
        return body["token"]

    def headers_for(self, case) -> dict:
        if case.path in ("/api/v1/messages", "/api/v1/calls"):
            return self.integration
        if case.path == "/api/v1/auth/logout":
            return {"Authorization": f"Bearer {self.login()}"}
        return self.admin


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("contract-hub")
    db_url = f"sqlite:///{data_dir / 'servicehub.db'}"
    upgrade(db_url)
    engine = make_engine(db_url, pool_size=1)
    try:
        create_agent(engine, ADMIN_EMAIL, ADMIN_PASSWORD, role="admin", name="Contract Admin")
        create_agent(engine, "contract-agent@example.com", "contract agent password", role="agent")
        integration = create_token(engine, "contract", role="integration")
    finally:
        engine.dispose()
    server = HubProcess(data_dir, db_url, free_port(), env={"SERVICEHUB_LOGIN_RATE_PER_MINUTE": "1000000"})
    server.start()
    try:
        server.wait_healthy(60)
        hub = LiveHub(server, integration)
        for i in range(1, SEEDED + 1):
            status, body = _request(
                f"{hub.url}/api/v1/messages",
                method="POST",
                headers=hub.integration,
                body={
                    "channel": "api",
                    "external_id": f"seed-{i}",
                    "sender": {"address": f"seed{i}@example.com", "name": f"Seed {i}"},
                    "subject": f"Seeded conversation {i}",
                    "text": f"hello {i}",
                    "html": f"<p>hello <b>{i}</b></p>",
                },
            )
            assert status == 201 and body["conversation_id"] == i and body["customer_id"] == i, body
        # An outbound reply and a note, so conversation details carry every kind of message.
        status, _ = _request(f"{hub.url}/api/v1/conversations/1/replies", method="POST", headers=hub.admin, body={"text": "on it"})
        assert status == 201
        status, _ = _request(f"{hub.url}/api/v1/conversations/1/notes", method="POST", headers=hub.admin, body={"text": "vip"})
        assert status == 201
        yield hub
    finally:
        server.stop()


def test_served_document_is_the_generated_one(live_hub):
    status, served = _request(f"{live_hub.url}/api/v1/openapi.json")
    assert status == 200
    assert served == json.loads(json.dumps(openapi_document()))
    assert served["openapi"].startswith("3.1")


def refused_by_http_parser(response) -> bool:
    """aiohttp's HTTP parser refuses a request line or a header over 8190 bytes (a `q` far over
    its maxLength, say) with a text/plain 400 before any hub code runs: a transport limit that
    every client meets the same way, not an answer of the API."""
    request = response.request
    too_long = len(request.path_url.encode()) > HTTP_LINE_LIMIT or any(
        len(name) + len(value) + 2 > HTTP_LINE_LIMIT for name, value in request.headers.items()
    )
    return too_long and response.status_code == 400


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_openapi_document(case, live_hub):
    response = case.call(base_url=live_hub.url, headers=live_hub.headers_for(case), timeout=15)
    if refused_by_http_parser(response):
        return
    case.validate_response(response, checks=CHECKS)


@focused.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_with_realistic_input_conforms(case, live_hub):
    response = case.call(base_url=live_hub.url, headers=live_hub.headers_for(case), timeout=15)
    case.validate_response(response, checks=CHECKS)
