"""The app is assembled from one list of capabilities: what it mounts and what its OpenAPI document
lists are the same routes, and the declared order is enforced."""

from __future__ import annotations

import re

import pytest

from hub.web.app import CAPABILITIES, create_app, openapi_document
from hub.web.capability import Capability, check_order
from hub.web.keys import OPENAPI

# The bare address only sends people to the inbox (a redirect, not part of the API).
UNDOCUMENTED = {("/", "get")}


def _canonical(path: str) -> str:
    # aiohttp keeps a route's regex ({name:[a-z_]+}); the document names the parameter only.
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def test_every_mounted_route_is_documented_and_every_documented_route_mounted(settings):
    app = create_app(settings)
    mounted = {(_canonical(r.resource.canonical), r.method.lower()) for r in app.router.routes()
               if r.method not in ("HEAD", "*")} - UNDOCUMENTED
    documented = {(path, method) for path, item in openapi_document()["paths"].items() for method in item}
    assert mounted == documented, f"mounted only: {sorted(mounted - documented)}; documented only: {sorted(documented - mounted)}"
    assert app[OPENAPI] == openapi_document()


def test_the_capabilities_order_is_declared_and_checked():
    names = [cap.name for cap in CAPABILITIES]
    assert names.index("scm") < names.index("segments") and names[-1] == "channels"
    check_order(CAPABILITIES)
    swapped = [cap for cap in CAPABILITIES if cap.name != "scm"]
    swapped.append(next(cap for cap in CAPABILITIES if cap.name == "scm"))
    with pytest.raises(ValueError, match="'segments' requires scm"):
        check_order(swapped)
    with pytest.raises(ValueError, match="listed twice"):
        check_order([Capability("a"), Capability("a")])


def test_two_capabilities_cannot_document_the_same_operation():
    from hub.web.capability import ApiDoc
    from hub.web.openapi import build_document

    item = {"/x": {"get": {"summary": "x", "responses": {}}}}
    with pytest.raises(ValueError, match="GET /x"):
        build_document([Capability("a", openapi=lambda: ApiDoc(item)), Capability("b", openapi=lambda: ApiDoc(item))])
