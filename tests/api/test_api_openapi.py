"""The OpenAPI description is served and describes every /api/v1 route of the URL map."""

from __future__ import annotations

import re

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def openapi_path(rule: str) -> str:
    """`/api/v1/forms/<form_uid>` -> `/api/v1/forms/{form_uid}` (converters dropped)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_api_rule_is_described_with_its_methods(app, client):
    response = client.get("/api/v1/openapi.json")  # no token needed
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "http://localhost"}]
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = {
        (openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - IGNORED_METHODS
    }
    assert ("/api/v1/forms/{form_uid}/submissions", "POST") in routed  # the webhook
    assert routed - described == set(), "routes missing from webapp/api/openapi/"
    assert described - routed == set(), "described routes that do not exist"


def test_every_reference_resolves(client):
    document = client.get("/api/v1/openapi.json").json
    text = str(document)
    for kind, name in re.findall(r"#/components/(\w+)/(\w+)", text):
        assert name in document["components"][kind], (kind, name)
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == declared, path
