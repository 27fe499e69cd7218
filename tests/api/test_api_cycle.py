"""The whole cycle through the API, with a real Redis, RQ worker and HTTP endpoint.

Create a form, a JSON and an XML hook, post submissions to the webhook,
deliver them, read the logs, fail, retry one and all, pause and resume a
hook, rename and delete it. No secret ever comes back in a response.
"""

from __future__ import annotations

import base64
import json

from tests.helpers import fixture_bytes

PASSWORD = "pw-Sup3r-s3cret-9731"
HEADER_VALUE = "key-Very-s3cret-4682"


def ingest(client, form: dict, sample: str, content_type: str) -> dict:
    """POST a sample to the form's webhook URL, as a sender would (ingest token)."""
    path = form["ingest_url"].removeprefix("http://localhost")
    response = client.post(
        path,
        data=fixture_bytes(sample),
        headers={
            "Authorization": f"Bearer {form['ingest_token']}",
            "Content-Type": content_type,
        },
    )
    assert response.status_code == 201, response.json
    return response.json


def logs(api, hook: dict, **query) -> dict:
    response = api.get(hook["logs_url"].removeprefix("http://localhost"), query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def fetch(api, hook: dict) -> dict:
    response = api.get(hook["url"].removeprefix("http://localhost"))
    assert response.status_code == 200, response.json
    return response.json


def test_full_cycle(app, client, api, worker, endpoint):
    # A form and two hooks, one JSON (basic auth, header, subset, wrapper), one XML.
    response = api.post("/api/v1/forms", json={"name": "Household survey"})
    assert response.status_code == 201, response.json
    form = response.json
    assert form["ingest_url"] == f"http://localhost/api/v1/forms/{form['uid']}/submissions"
    hooks_url = f"/api/v1/forms/{form['uid']}/hooks"
    response = api.post(
        hooks_url,
        json={
            "name": "CRM",
            "endpoint": endpoint.url,
            "export_type": "json",
            "auth_level": "basic_auth",
            "settings": {
                "username": "crm",
                "password": PASSWORD,
                "custom_headers": {"X-Api-Key": HEADER_VALUE},
            },
            "subset_fields": ["household", "consent"],
            "payload_template": '{"source": "formhooks", "data": %SUBMISSION%}',
        },
    )
    assert response.status_code == 201, response.json
    json_hook = response.json
    assert json_hook["settings"] == {"username": "crm", "custom_headers": {"X-Api-Key": "••••82"}}
    response = api.post(
        hooks_url, json={"name": "Archive", "endpoint": endpoint.url, "export_type": "xml"}
    )
    assert response.status_code == 201, response.json
    xml_hook = response.json

    # A submission reaches both hooks.
    assert ingest(client, form, "nested.json", "application/json")["deliveries"] == 2
    worker()
    by_type = {r["headers"]["Content-Type"]: r for r in endpoint.requests}
    assert set(by_type) == {"application/json", "application/xml"}
    sent = by_type["application/json"]
    assert json.loads(sent["body"])["source"] == "formhooks"
    assert set(json.loads(sent["body"])["data"]) == {"household", "consent"}
    assert sent["headers"]["X-Api-Key"] == HEADER_VALUE
    expected_auth = base64.b64encode(f"crm:{PASSWORD}".encode()).decode()
    assert sent["headers"]["Authorization"] == f"Basic {expected_auth}"
    assert by_type["application/xml"]["body"].startswith(b"<")
    for hook in (json_hook, xml_hook):
        page = logs(api, hook, status="success")
        assert page["count"] == 1
        assert page["results"][0]["submission_id"] == "uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"
        assert logs(api, hook, status="failed")["count"] == 0
        counts = fetch(api, hook)
        assert (counts["success_count"], counts["failed_count"]) == (1, 0)

    # The endpoint breaks: every try of a second submission fails, then the logs are failed.
    endpoint.statuses = [200, 200] + [500] * 8 + [200]
    ingest(client, form, "kobo_flat.json", "application/json")
    worker()
    assert len(endpoint.requests) == 2 + 8
    for hook in (json_hook, xml_hook):
        [failed] = logs(api, hook, status="failed")["results"]
        assert (failed["tries"], failed["status_code"]) == (4, 500)
        assert failed["next_retry_at"] is None
        detail = api.get(failed["url"].removeprefix("http://localhost")).json
        assert [a["outcome"] for a in detail["attempts"]] == ["failure"] * 4
        assert [a["number"] for a in detail["attempts"]] == [1, 2, 3, 4]
        assert fetch(api, hook)["failed_count"] == 1
    assert logs(api, json_hook)["count"] == 2

    # Retry one (the JSON hook's), then all failed of the XML hook.
    [failed] = logs(api, json_hook, status="failed")["results"]
    retry_url = failed["url"].removeprefix("http://localhost") + "/retry"
    response = api.post(retry_url)
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["tries"]) == ("pending", 0)
    worker()
    assert fetch(api, json_hook)["success_count"] == 2
    response = api.post(retry_url)  # success now: not failed, nothing to retry
    assert response.status_code == 400
    assert "status" in response.json["errors"]
    retry_all = xml_hook["url"].removeprefix("http://localhost") + "/retry"
    response = api.post(retry_all)
    assert response.status_code == 200, response.json
    assert response.json["count"] == 1
    worker()
    assert fetch(api, xml_hook)["success_count"] == 2
    assert api.post(retry_all).json["count"] == 0

    # Deactivate the JSON hook while a delivery is pending: it is parked, then resumed.
    json_path = json_hook["url"].removeprefix("http://localhost")
    ingest(client, form, "odk_instance.xml", "application/xml")
    response = api.patch(json_path, json={"name": "CRM (paused)", "active": False})
    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["active"]) == ("CRM (paused)", False)
    worker()
    [parked] = logs(api, json_hook, status="pending")["results"]
    assert parked["next_retry_at"] is None and "Paused" in parked["message"]
    response = api.patch(json_path, json={"active": True})
    assert response.status_code == 200 and response.json["active"] is True
    worker()
    assert fetch(api, json_hook)["success_count"] == 3
    # The password was kept through the PATCHes, and sent with the resumed delivery.
    assert endpoint.requests[-1]["headers"]["Authorization"] == f"Basic {expected_auth}"

    # Delete the JSON hook: its logs go with it.
    assert api.delete(json_path).status_code == 204
    assert api.get(json_path).status_code == 404
    remaining = api.get(hooks_url).json
    assert [h["uid"] for h in remaining["results"]] == [xml_hook["uid"]]

    # No response ever contained a secret in clear.
    everything = "\n".join(api.bodies)
    assert PASSWORD not in everything
    assert HEADER_VALUE not in everything
    assert "password" not in everything
