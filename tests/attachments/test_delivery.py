"""Hooks receive `_attachments` (KoboToolbox's shape) in JSON payloads, sent by a real
RQ worker to a real loopback endpoint; the subset rule and the wrapper treat it as
any field; XML payloads are the instance as received (docs/attachments.md).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.attachments.attachment_support import INSTANCE, collect_upload, photo
from tests.helpers import run_worker

FILES = [photo(1), ("1700000000999.m4a", b"audio" * 1000, "audio/mp4")]


def deliver(app, client, make, endpoint, **hook):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, **hook)
    collect_upload(client, form_uid, token, files=FILES)
    run_worker(app)
    (sent,) = endpoint.wait_for(1)
    return sent


def test_a_json_payload_lists_the_files_with_links_that_download_them(app, client, make, endpoint):
    sent = deliver(app, client, make, endpoint)
    payload = json.loads(sent["body"])
    assert payload["household/head_name"] == "Aïssatou Diallo"  # the data as before
    listed = payload["_attachments"]
    assert [
        {k: entry[k] for k in ("filename", "media_file_basename", "mimetype", "size")}
        for entry in listed
    ] == [
        {"filename": name, "media_file_basename": name, "mimetype": kind, "size": len(data)}
        for name, data, kind in FILES
    ]
    reader = app.test_client()  # anyone with the link: no session, no token
    for entry, (_, data, kind) in zip(listed, FILES, strict=True):
        url = entry["download_url"]
        assert url.startswith("http://127.0.0.1:5000/attachments/")  # the worker: no request
        answer = reader.get(urlsplit(url).path)
        assert answer.status_code == 200 and answer.data == data
        assert answer.mimetype == kind


def test_the_subset_rule_keeps_or_drops_attachments_like_any_field(app, client, make, endpoint):
    sent = deliver(app, client, make, endpoint, subset_fields=["comments", "_attachments"])
    payload = json.loads(sent["body"])
    assert sorted(payload) == ["_attachments", "comments"]
    assert len(payload["_attachments"]) == 2
    endpoint.requests.clear()
    sent = deliver(app, client, make, endpoint, subset_fields=["comments"])
    assert sorted(json.loads(sent["body"])) == ["comments"]


def test_the_wrapper_carries_attachments_in_the_submission(app, client, make, endpoint):
    template = '{"source": "formhooks", "record": %SUBMISSION%}'
    sent = deliver(app, client, make, endpoint, payload_template=template)
    record = json.loads(sent["body"])["record"]
    assert [entry["filename"] for entry in record["_attachments"]] == [f[0] for f in FILES]


def test_an_xml_payload_is_the_instance_as_received(app, client, make, endpoint):
    sent = deliver(app, client, make, endpoint, export_type="xml")
    assert sent["body"] == INSTANCE
