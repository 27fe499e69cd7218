"""End to end: real gunicorn, worker.py, scheduler, Redis and HTTP endpoints."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from tests.helpers import Endpoint, fixture_bytes, load_logs, nothing_left_to_send, wait_until

pytestmark = pytest.mark.e2e

WRAPPER = '{"source": "formhooks", "data": %SUBMISSION%}'
SUBSET = ["household", "meta", "name"]
KOBO_ID = "uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18"

EXPECTED_JSON = {
    "kobo_flat.json": {
        "household/head_name": "Aïssatou Diallo",
        "household/members": "6",
        "household/water/source": "borehole",
        "household/water/distance_m": "350",
        "meta/instanceID": KOBO_ID,
    },
    "nested.json": {
        "household": {
            "head_name": "Kofi Mensah",
            "members": 4,
            "water": {"source": "piped", "distance_m": 20},
        },
        "meta": {"instanceID": "uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"},
    },
    "odk_instance.xml": {
        "household/head_name": "Aïssatou Diallo",
        "household/members": "6",
        "household/water/source": "borehole",
        "household/water/distance_m": "350",
        "meta/instanceID": "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35",
        "meta/instanceName": "Diallo 2026-11-20",
    },
    "webform.urlencoded": {"name": "Nadia Haddad"},
}
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
EXPECTED_XML = {
    "kobo_flat.json": (
        '<{uid} id="{uid}"><_id>48213</_id><formhub><uuid>a81b6f02c4d94b8e9e7c2f1d0b3a6e55</uuid>'
        "</formhub><start>2026-11-20T09:14:03.512+01:00</start><end>2026-11-20T09:21:47.020+01:00"
        "</end><today>2026-11-20</today><household><head_name>Aïssatou Diallo</head_name><members>6"
        "</members><water><source>borehole</source><distance_m>350</distance_m></water></household>"
        "<crops>maize sorghum</crops><crop_repeat><crop_name>maize</crop_name>"
        "<area_ha>1.5</area_ha></crop_repeat><crop_repeat><crop_name>sorghum</crop_name><area_ha>0.75</area_ha>"
        "</crop_repeat><location>12.6392 -8.0029 312 5</location><photo>IMG_20261120_091812.jpg"
        "</photo><comments>Puits à réparer; &lt;urgent&gt; &amp; à suivre</comments><__version__>"
        "vQ7zgU9dCkXv4NQFh6sYpC</__version__><meta><instanceID>" + KOBO_ID + "</instanceID></meta>"
        "<_xform_id_string>aZ7kqP3wXbLmN2vR8tYs5d</_xform_id_string><_uuid>"
        "3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</_uuid><_attachments><mimetype>image/jpeg</mimetype>"
        "<filename>enumerator/attachments/IMG_20261120_091812.jpg</filename><instance>48213"
        "</instance><xform>911</xform></_attachments><_status>submitted_via_web</_status>"
        "<_geolocation>12.6392</_geolocation><_geolocation>-8.0029</_geolocation>"
        "<_submission_time>2026-11-20T08:22:05</_submission_time><_validation_status />"
        "<_submitted_by>enumerator</_submitted_by></{uid}>"
    ),
    "nested.json": (
        '<{uid} id="{uid}"><household><head_name>Kofi Mensah</head_name><members>4</members>'
        "<water><source>piped</source><distance_m>20</distance_m></water></household><crop_repeat>"
        "<crop_name>cassava</crop_name><area_ha>2.0</area_ha></crop_repeat><consent>true</consent>"
        "<score>7.5</score><notes /><meta><instanceID>uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"
        "</instanceID></meta></{uid}>"
    ),
    "webform.urlencoded": (
        '<{uid} id="{uid}"><name>Nadia Haddad</name><email>nadia@example.org</email>'
        "<district>Bekaa</district><needs>shelter</needs><needs>water</needs>"
        "<message>Besoin d'aide à Zahlé</message></{uid}>"
    ),
}
CONTENT_TYPES = {
    "kobo_flat.json": "application/json",
    "nested.json": "application/json",
    "odk_instance.xml": "application/xml",
    "webform.urlencoded": "application/x-www-form-urlencoded",
}


def post(stack, form_uid, token, sample, **headers):
    response = requests.post(
        f"{stack.base_url}/api/v1/forms/{form_uid}/submissions",
        data=fixture_bytes(sample),
        headers={"Content-Type": CONTENT_TYPES[sample], **headers},
        auth=("kobo", token),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_every_fixture_reaches_a_json_hook_and_an_xml_hook(app, make, stack, endpoint):
    xml_endpoint = Endpoint()
    try:
        form_uid, token = make.form()
        make.hook(
            form_uid,
            name="CRM",
            endpoint=endpoint.url,
            subset_fields=SUBSET,
            payload_template=WRAPPER,
            auth_level="basic_auth",
            username="crm",
            password="pässword",
            custom_headers={"X-Api-Key": "k-123"},
        )
        make.hook(form_uid, name="Archive", endpoint=xml_endpoint.url, export_type="xml")
        stack.start_all()
        for number, sample in enumerate(CONTENT_TYPES, start=1):
            post(stack, form_uid, token, sample)
            [json_request] = endpoint.wait_for(number)[number - 1 :]
            [xml_request] = xml_endpoint.wait_for(number)[number - 1 :]
            assert json.loads(json_request["body"]) == {
                "source": "formhooks",
                "data": EXPECTED_JSON[sample],
            }, sample
            if sample == "odk_instance.xml":
                assert xml_request["body"] == fixture_bytes(sample)
            else:
                expected = DECL + EXPECTED_XML[sample].format(uid=form_uid)
                assert xml_request["body"].decode("utf-8") == expected, sample
            headers = json_request["headers"]
            assert headers["Content-Type"] == "application/json"
            assert headers["X-Api-Key"] == "k-123"
            credentials = base64.b64encode("crm:pässword".encode()).decode()
            assert headers["Authorization"] == f"Basic {credentials}"
            assert headers["User-Agent"].startswith("Formhooks/")
            assert xml_request["headers"]["Content-Type"] == "application/xml"
            assert "Authorization" not in xml_request["headers"]
        wait_until(
            lambda: all(r.status == "success" for r in load_logs(app)),
            what="every log to succeed",
            logs=stack.logs,
        )
        rows = load_logs(app)
        assert len(rows) == 8
        delivery_ids = {
            r["headers"]["X-Formhooks-Delivery"] for r in endpoint.requests + xml_endpoint.requests
        }
        assert delivery_ids == {row.uid for row in rows}
    finally:
        xml_endpoint.close()


def test_retries_are_spaced_by_retry_delays_and_stop_after_three(app, make, stack, endpoint):
    always_failing = Endpoint()
    try:
        stack.env["RETRY_DELAYS"] = "1,2,3"
        endpoint.statuses = [500, 502, 503, 200]
        always_failing.statuses = [500]
        form_uid, token = make.form()
        make.hook(form_uid, name="Flaky", endpoint=endpoint.url)
        make.hook(form_uid, name="Down", endpoint=always_failing.url)
        stack.start_all()
        post(stack, form_uid, token, "nested.json")
        times = [r["time"] for r in endpoint.wait_for(4, timeout=20)]
        gaps = [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)]
        assert len(times) == 4
        for gap, delay in zip(gaps, [1, 2, 3], strict=True):
            assert abs(gap - delay) <= 1, gaps
        always_failing.wait_for(4, timeout=20)
        wait_until(
            lambda: load_logs(app)[1].status == "failed", what="Down: failed", logs=stack.logs
        )
        wait_until(
            lambda: load_logs(app)[0].status == "success", what="Flaky: success", logs=stack.logs
        )
        assert nothing_left_to_send(app, stack.env["REDIS_URL"]) == {}  # so no fifth try
        flaky, down = load_logs(app)
        assert (flaky.status, flaky.tries) == ("success", 4)
        assert (down.status, down.tries, down.next_retry_at) == ("failed", 4, None)
        assert len(always_failing.requests) == 4
        assert len(endpoint.requests) == 4
    finally:
        always_failing.close()


def test_accepted_while_redis_is_down_then_delivered(app, make, stack, stack_redis, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    stack.start_all()
    stack_redis.stop()
    answer = post(stack, form_uid, token, "kobo_flat.json")
    assert answer["deliveries"] == 1
    health = requests.get(stack.base_url + "/healthz", timeout=10)
    assert health.status_code == 503 and health.json()["redis"] != "ok"
    stack_redis.start()  # empty: the job and the periodic jobs are gone
    endpoint.wait_for(1, timeout=30)
    wait_until(lambda: load_logs(app)[0].status == "success", what="success", logs=stack.logs)
    assert nothing_left_to_send(app, stack.env["REDIS_URL"]) == {}  # no sweep can send it again
    assert len(endpoint.requests) == 1


def test_worker_killed_mid_send_then_restarted_delivers(app, make, stack, endpoint):
    stack.env["DELIVERY_TIMEOUT"] = "2"  # lease: 2 * 2 + 5 = 9 s
    endpoint.delay = 1.5
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    stack.start_all()
    post(stack, form_uid, token, "nested.json")
    endpoint.wait_for(1)
    stack.kill("worker")  # SIGKILL to the whole worker.py process group, mid-send
    endpoint.delay = 0
    stack.start("worker")
    endpoint.wait_for(2, timeout=30)
    wait_until(lambda: load_logs(app)[0].status == "success", what="success", logs=stack.logs)
    [row] = load_logs(app)
    assert row.tries == 2
    assert [a.outcome for a in row.attempts] == ["error", "success"]
    first, second = endpoint.requests
    assert first["headers"]["X-Formhooks-Delivery"] == second["headers"]["X-Formhooks-Delivery"]
    assert nothing_left_to_send(app, stack.env["REDIS_URL"]) == {}
    assert len(endpoint.requests) == 2
