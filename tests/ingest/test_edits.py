"""Edits as form tools make them: versions of one submission, sent only to hooks that ask.

Each edit signal (meta/deprecatedID in XML, flat and nested JSON, KoboToolbox's
meta/rootUuid, Enketo's X-OpenRosa-Deprecated-Id header), chains, edits
arriving before their original, unknown originals and re-posts, with a real
RQ worker sending to a real loopback endpoint, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.helpers import fixture_bytes, run_worker
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission, form_submission_counts
from webapp.models.forms import Form

ODK_ORIGINAL = "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"
ODK_EDIT = "uuid:4b7f1e2a-93c6-4d0e-a1f5-6c8d2e9b0f47"
KOBO_ORIGINAL = "uuid:e0e6dd06-82e4-490a-bc16-7e26f2dde69e"
KOBO_EDIT = "uuid:7c1a9f30-2b4d-4e8a-9f61-0d3e5b7a2c18"


pytestmark = pytest.mark.settings(SSRF_ALLOWED_NETWORKS="127.0.0.0/8")


def post(client, form_uid, token, body, content_type="application/json", **headers):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type, **headers},
    )


def flat(instance_id, q, **meta):
    """A flat (KoboToolbox-style) JSON submission."""
    body = {"q": q, "meta/instanceID": instance_id}
    body.update({f"meta/{name}": value for name, value in meta.items()})
    return body


def nested(instance_id, q, **meta):
    return {"q": q, "meta": {"instanceID": instance_id, **meta}}


def state(app, form_uid):
    """(submissions counted, version rows received, logs) of the form."""
    with app.app_context():
        form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
        rows = db.session.scalar(
            select(func.count())
            .select_from(Submission)
            .where(Submission.form_id == form_id, Submission.received.is_(True))
        )
        logs = db.session.scalar(select(func.count()).select_from(DeliveryLog))
        return form_submission_counts([form_id])[form_id], rows, logs


def kobo_root_only():
    """kobo_full_edited.json without its deprecatedID: only meta/rootUuid names the original."""
    body = json.loads(fixture_bytes("kobo_full_edited.json"))
    del body["meta/deprecatedID"]
    return body


def bare_root_uuid():
    body = kobo_root_only()
    body["meta/rootUuid"] = body["meta/rootUuid"].removeprefix("uuid:")
    return body


SIGNALS = {
    "xml deprecatedID": (
        lambda: fixture_bytes("odk_instance.xml"),
        lambda: fixture_bytes("odk_instance_edit.xml"),
        "application/xml",
        {},
        (ODK_ORIGINAL, ODK_EDIT),
    ),
    "flat deprecatedID": (
        lambda: flat("uuid:a1", 1),
        lambda: flat("uuid:a2", 2, deprecatedID="uuid:a1"),
        "application/json",
        {},
        ("uuid:a1", "uuid:a2"),
    ),
    "nested deprecatedID": (
        lambda: nested("uuid:n1", 1),
        lambda: nested("uuid:n2", 2, deprecatedID="uuid:n1"),
        "application/json",
        {},
        ("uuid:n1", "uuid:n2"),
    ),
    "kobo deprecatedID and rootUuid": (
        lambda: fixture_bytes("kobo_full.json"),
        lambda: fixture_bytes("kobo_full_edited.json"),
        "application/json",
        {},
        (KOBO_ORIGINAL, KOBO_EDIT),
    ),
    "kobo rootUuid only": (
        lambda: fixture_bytes("kobo_full.json"),
        kobo_root_only,
        "application/json",
        {},
        (KOBO_ORIGINAL, KOBO_EDIT),
    ),
    "kobo rootUuid without uuid:": (
        lambda: fixture_bytes("kobo_full.json"),
        bare_root_uuid,
        "application/json",
        {},
        (KOBO_ORIGINAL, KOBO_EDIT),
    ),
    "enketo header": (
        lambda: nested("uuid:h1", 1),
        lambda: nested("uuid:h2", 2),
        "application/json",
        {"X-OpenRosa-Deprecated-Id": "uuid:h1"},
        ("uuid:h1", "uuid:h2"),
    ),
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_each_signal_makes_a_version_that_sends_nothing_by_default(
    app, client, make, endpoint, signal
):
    first, second, content_type, headers, (root, edit) = SIGNALS[signal]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    created = post(client, form_uid, token, first(), content_type)
    assert created.status_code == 201, created.json
    assert created.json["instance_id"] == root
    edited = post(client, form_uid, token, second(), content_type, **headers)
    assert edited.status_code == 200, edited.json
    assert edited.json == {
        "id": created.json["id"],
        "instance_id": edit,
        "created": False,
        "edit_of": root,
        "deliveries": 0,
    }
    assert state(app, form_uid) == (1, 2, 1)  # one submission, two versions, one log
    run_worker(app)
    assert len(endpoint.wait_for(1)) == 1
    with app.app_context():
        version = db.session.scalar(select(Submission).where(Submission.instance_id == edit))
        assert (version.root_id, version.root_instance_id) == (created.json["id"], root)
        assert version.event == "submission.edited"


def test_a_chain_of_three_is_sent_to_the_hooks_that_ask_for_edits(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, name="Creations only")
    make.hook(form_uid, endpoint=endpoint.url + "?edits", name="Edits too", send_edits=True)
    answers = [
        post(client, form_uid, token, flat("uuid:v1", 1)),
        post(client, form_uid, token, flat("uuid:v2", 2, deprecatedID="uuid:v1")),
        # The third names the second (any version can be edited) and the root.
        post(client, form_uid, token, flat("uuid:v3", 3, deprecatedID="uuid:v2", rootUuid="v1")),
    ]
    assert [(a.status_code, a.json["deliveries"]) for a in answers] == [
        (201, 2),
        (200, 1),
        (200, 1),
    ]
    assert [a.json.get("edit_of") for a in answers] == [None, "uuid:v1", "uuid:v1"]
    run_worker(app)
    received = endpoint.wait_for(4)
    assert len(received) == 4
    sent = sorted((r["path"], json.loads(r["body"])["q"]) for r in received)
    assert sent == [("/hook", 1), ("/hook?edits", 1), ("/hook?edits", 2), ("/hook?edits", 3)]
    assert state(app, form_uid) == (1, 3, 4)
    with app.app_context():
        logs = db.session.execute(
            select(Submission.instance_id, DeliveryLog.status)
            .join(DeliveryLog, DeliveryLog.submission_id == Submission.id)
            .order_by(DeliveryLog.id)
        ).all()
    # Each log says which version it carried.
    assert [tuple(row) for row in logs] == [
        ("uuid:v1", "success"),
        ("uuid:v1", "success"),
        ("uuid:v2", "success"),
        ("uuid:v3", "success"),
    ]


def test_an_edit_before_its_original_is_created_and_the_original_linked_not_sent(
    app, client, make, endpoint
):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, send_edits=True)
    edit = post(client, form_uid, token, fixture_bytes("odk_instance_edit.xml"), "application/xml")
    assert edit.status_code == 201 and edit.json["deliveries"] == 1
    original = post(client, form_uid, token, fixture_bytes("odk_instance.xml"), "application/xml")
    assert original.status_code == 200
    assert original.json == {
        "id": edit.json["id"],
        "instance_id": ODK_ORIGINAL,
        "created": False,
        "edit_of": ODK_EDIT,  # the submission's stable id: what receivers were sent
        "deliveries": 0,
    }
    run_worker(app)
    assert len(endpoint.wait_for(1)) == 1
    assert state(app, form_uid) == (1, 2, 1)
    with app.app_context():
        from webapp.models.submissions import versions_of

        order = [v.instance_id for v in versions_of(edit.json["id"])]
    assert order == [ODK_ORIGINAL, ODK_EDIT]  # the original is the earlier version
    # A later edit of either version joins the same submission.
    later = post(
        client, form_uid, token, nested("uuid:third", 3, deprecatedID=ODK_EDIT), "application/json"
    )
    assert (later.status_code, later.json["edit_of"]) == (200, ODK_EDIT)


def test_a_missing_middle_version_arriving_late_is_not_sent(app, client, make, endpoint):
    """v3 names v2, which never came: when v2 arrives it is older than what was sent."""
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, send_edits=True)
    post(client, form_uid, token, flat("uuid:m1", 1))
    third = post(client, form_uid, token, flat("uuid:m3", 3, deprecatedID="uuid:m2", rootUuid="m1"))
    assert (third.status_code, third.json["edit_of"], third.json["deliveries"]) == (
        200,
        "uuid:m1",
        1,
    )
    second = post(client, form_uid, token, flat("uuid:m2", 2, deprecatedID="uuid:m1"))
    assert (second.status_code, second.json["deliveries"]) == (200, 0)
    run_worker(app)
    assert sorted(json.loads(r["body"])["q"] for r in endpoint.wait_for(2)) == [1, 3]
    with app.app_context():
        from webapp.models.submissions import versions_of

        assert [v.instance_id for v in versions_of(third.json["id"])] == [
            "uuid:m1",
            "uuid:m2",
            "uuid:m3",
        ]


def test_an_edit_of_an_unknown_submission_is_a_creation_and_later_edits_chain(
    app, client, make, endpoint
):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)  # send_edits off
    first = post(client, form_uid, token, fixture_bytes("kobo_full_edited.json"))
    assert first.status_code == 201 and first.json["deliveries"] == 1
    with app.app_context():
        stored = db.session.get(Submission, first.json["id"])
        assert stored.deprecated_id == KOBO_ORIGINAL  # recorded
    # The next edit in KoboToolbox names the first version by rootUuid only.
    again = json.loads(fixture_bytes("kobo_full_edited.json"))
    again.update(
        {"meta/instanceID": "uuid:third", "_uuid": "third", "meta/deprecatedID": KOBO_EDIT}
    )
    second = post(client, form_uid, token, again)
    assert (second.status_code, second.json["edit_of"], second.json["deliveries"]) == (
        200,
        KOBO_EDIT,
        0,
    )
    run_worker(app)
    assert len(endpoint.wait_for(1)) == 1
    assert state(app, form_uid) == (1, 2, 1)


def test_reposts_of_a_version(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid, send_edits=True)
    post(client, form_uid, token, flat("uuid:r1", 1))
    post(client, form_uid, token, flat("uuid:r2", 2, deprecatedID="uuid:r1"))
    with app.app_context():
        before = db.session.scalar(select(Submission).where(Submission.instance_id == "uuid:r2"))
        before_updated = before.updated_at
    same = post(client, form_uid, token, flat("uuid:r2", 2, deprecatedID="uuid:r1"))
    assert same.status_code == 200
    assert same.json == {"id": before.root_id, "instance_id": "uuid:r2", "created": False,
                         "deliveries": 0}  # fmt: skip
    with app.app_context():
        after = db.session.scalar(select(Submission).where(Submission.instance_id == "uuid:r2"))
        assert (after.edit_count, after.updated_at) == (0, before_updated)  # nothing changed
    changed = post(client, form_uid, token, flat("uuid:r2", 22, deprecatedID="uuid:r1"))
    assert (changed.status_code, changed.json["deliveries"]) == (200, 0)
    root_again = post(client, form_uid, token, flat("uuid:r1", 11))
    assert (root_again.status_code, root_again.json["deliveries"]) == (200, 0)
    with app.app_context():
        v2 = db.session.scalar(select(Submission).where(Submission.instance_id == "uuid:r2"))
        assert (v2.edit_count, v2.current_data["q"], v2.data["q"]) == (1, 22, 2)
        v1 = db.session.scalar(select(Submission).where(Submission.instance_id == "uuid:r1"))
        assert (v1.edit_count, v1.current_data["q"]) == (1, 11)
    assert state(app, form_uid) == (1, 2, 2)


@pytest.mark.parametrize(
    "body, headers",
    [
        (flat("uuid:x2", 2, deprecatedID=["uuid:x1"]), {}),
        (nested("uuid:x2", 2, rootUuid={"a": 1}), {}),
        (flat("uuid:x2", 2), {"X-OpenRosa-Deprecated-Id": "x" * 300}),
    ],
)
def test_a_malformed_signal_is_refused_and_stores_nothing(app, client, make, body, headers):
    form_uid, token = make.form()
    response = post(client, form_uid, token, body, **headers)
    assert response.status_code == 400
    assert "must be" in response.json["error"]
    assert state(app, form_uid) == (0, 0, 0)


def test_an_empty_or_undefined_header_and_a_self_naming_root_are_no_signal(app, client, make):
    form_uid, token = make.form()
    for number, value in enumerate(["", "undefined", "null"]):
        response = post(
            client,
            form_uid,
            token,
            flat(f"uuid:u{number}", number, rootUuid=f"uuid:u{number}"),
            **{"X-OpenRosa-Deprecated-Id": value},
        )
        assert response.status_code == 201, response.json
    assert state(app, form_uid) == (3, 3, 0)


def test_api_lists_one_row_per_submission_and_the_detail_lists_versions(app, client, make):
    form_uid, token = make.form()
    post(client, form_uid, token, flat("uuid:p1", 1))
    post(client, form_uid, token, flat("uuid:p2", 2, deprecatedID="uuid:p1"))
    post(client, form_uid, token, flat("uuid:p3", 3, deprecatedID="uuid:p2"))
    post(client, form_uid, token, flat("uuid:other", 9))
    with app.app_context():
        from webapp.models import ApiToken, User

        _, api_token = ApiToken.issue(User.by_email("alice@example.org"), name="tests")
        db.session.commit()
    auth = {"Authorization": f"Token {api_token}"}
    listed = client.get(f"/api/v1/forms/{form_uid}/submissions", headers=auth)
    assert listed.status_code == 200, listed.json
    assert listed.json["count"] == 2
    rows = {row["root_instance_id"]: row for row in listed.json["results"]}
    assert set(rows) == {"uuid:p1", "uuid:other"}
    # instance_id is the current version's (docs/api.md), the root stays the first's.
    assert rows["uuid:p1"]["instance_id"] == "uuid:p3"
    assert (rows["uuid:p1"]["versions"], rows["uuid:p1"]["data"]["q"]) == (3, 3)
    assert rows["uuid:p1"]["root_instance_id"] == "uuid:p1"
    assert rows["uuid:other"]["versions"] == 1
    detail = client.get(
        f"/api/v1/forms/{form_uid}/submissions/{rows['uuid:p1']['id']}", headers=auth
    )
    assert detail.status_code == 200
    versions = detail.json["versions"]
    assert [(v["number"], v["instance_id"], v["data"]["q"]) for v in versions] == [
        (1, "uuid:p1", 1),
        (2, "uuid:p2", 2),
        (3, "uuid:p3", 3),
    ]
    assert all(v["date_created"] for v in versions)
    with app.app_context():
        version_id = db.session.scalar(
            select(Submission.id).where(Submission.instance_id == "uuid:p2")
        )
    missing = client.get(f"/api/v1/forms/{form_uid}/submissions/{version_id}", headers=auth)
    assert missing.status_code == 404  # a version's row is not a submission


def test_an_original_and_its_edit_posted_at_once_make_one_submission(app, make, db_backend):
    """Two requests of one chain at once: the unique instance ids decide, not timing."""
    if db_backend[0] != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no race to lose")
    import threading

    form_uid, token = make.form()
    make.hook(form_uid)  # send_edits off: exactly one creation per chain is sent
    pairs = 15
    answers: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def send(body):
        barrier.wait()
        answer = post(app.test_client(), form_uid, token, body)
        answers[body["meta/instanceID"]] = answer.status_code

    for number in range(pairs):
        original = flat(f"uuid:o{number}", 1)
        edit = flat(f"uuid:e{number}", 2, deprecatedID=f"uuid:o{number}")
        threads = [threading.Thread(target=send, args=(body,)) for body in (original, edit)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Whichever committed first was created; the other joined its chain.
        assert sorted((answers[f"uuid:o{number}"], answers[f"uuid:e{number}"])) == [200, 201]
    assert state(app, form_uid) == (pairs, 2 * pairs, pairs)
    with app.app_context():
        roots = db.session.scalar(
            select(func.count()).select_from(Submission).where(Submission.root_id.is_(None))
        )
    assert roots == pairs


def test_every_send_names_its_event_and_submission_on_the_wire(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, send_edits=True)
    post(client, form_uid, token, fixture_bytes("kobo_full.json"))
    run_worker(app)
    post(client, form_uid, token, fixture_bytes("kobo_full_edited.json"))
    run_worker(app)
    received = endpoint.wait_for(2)
    seen = [
        (
            request["headers"]["X-Formhooks-Event"],
            request["headers"]["X-Formhooks-Submission"],
            json.loads(request["body"])["meta/instanceID"],
        )
        for request in received
    ]
    assert seen == [
        ("submission.created", KOBO_ORIGINAL, KOBO_ORIGINAL),
        ("submission.edited", KOBO_ORIGINAL, KOBO_EDIT),
    ]
    assert all(request["headers"]["X-Formhooks-Delivery"] for request in received)
