"""Files posted with OpenRosa submissions are kept with the version that brought them
(docs/attachments.md): several files, split uploads, resends, conflicts, edits.
Collect-style clients (tests/ingest/openrosa_clients.py), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from tests.attachments.attachment_support import (
    INSTANCE,
    INSTANCE_ID,
    collect_upload,
    file_part,
    instance_part,
    photo,
    post_parts,
    row_counts,
    stored_files,
)
from tests.helpers import run_worker
from tests.ingest.openrosa_clients import Part
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission
from webapp.models.attachments import CHUNK_BYTES
from webapp.models.base import utcnow

RECORDING = (
    "1700000000999.m4a",
    b"\x00\x00\x00\x18ftypM4A " + bytes(range(256)) * 1200,
    "audio/mp4",
)


def test_collect_upload_keeps_every_file_with_its_type_and_bytes(app, client, make):
    form_uid, token = make.form()
    files = [photo(1), photo(2, size=CHUNK_BYTES * 2 + 17), RECORDING]
    message = collect_upload(client, form_uid, token, files=files)
    assert message == "Submission received."
    assert stored_files(app) == {name: (kind, data) for name, data, kind in files}
    # Chunks of 256 KB: the big photo is three, the 300 KB recording two.
    assert row_counts(app) == (1, 3, 1 + 3 + 2, 0)


def test_a_split_upload_adds_its_files_to_the_same_submission_and_is_sent_once_with_all(
    app, make, make_app, endpoint
):
    small = make_app(MAX_SUBMISSION_BYTES=str(400 * 1024))
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    files = [photo(n, size=120_000) for n in range(6)]
    collect_upload(small.test_client(), form_uid, token, files=files)
    assert stored_files(app) == {name: (kind, data) for name, data, kind in files}
    assert row_counts(app)[:2] == (1, 6)
    run_worker(app)
    (sent,) = endpoint.wait_for(1)
    listed = json.loads(sent["body"])["_attachments"]
    assert [entry["filename"] for entry in listed] == [name for name, _, _ in files]
    assert row_counts(app)[3] == 1


def test_the_first_parts_of_a_split_upload_hold_the_deliveries_until_the_last(
    app, client, make, endpoint
):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    first = [instance_part(), file_part(*photo(1)[:2]), Part("*isIncomplete*", b"yes")]
    assert post_parts(client, form_uid, token, first).status_code == 201
    with app.app_context():
        due = db.session.scalar(select(DeliveryLog.next_retry_at))
    assert due > utcnow() + timedelta(minutes=5)
    run_worker(app)
    assert endpoint.requests == []  # held: nothing sent while more parts are due
    last = [instance_part(), file_part(*photo(2)[:2])]
    answer = post_parts(client, form_uid, token, last)
    assert answer.status_code == 200 and answer.json["deliveries"] == 1  # released
    with app.app_context():
        assert db.session.scalar(select(DeliveryLog.next_retry_at)) <= utcnow()
    run_worker(app)
    (sent,) = endpoint.wait_for(1)
    names = [entry["filename"] for entry in json.loads(sent["body"])["_attachments"]]
    assert names == [photo(1)[0], photo(2)[0]]


def test_a_resend_changes_nothing(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    files = [photo(1), photo(2)]
    collect_upload(client, form_uid, token, files=files)
    before = row_counts(app)
    with app.app_context():
        stored = db.session.execute(select(Submission.edit_count, Submission.updated_at)).all()
    message = collect_upload(client, form_uid, token, files=files)
    assert message == "Submission received (already known: stored as an update of it)."
    assert row_counts(app) == before
    with app.app_context():
        assert db.session.execute(select(Submission.edit_count, Submission.updated_at)).all() == (
            stored
        )
    # A resend that brings one more file adds it, and only it.
    collect_upload(client, form_uid, token, files=[*files, photo(3)])
    assert list(stored_files(app)) == [photo(1)[0], photo(2)[0], photo(3)[0]]
    assert row_counts(app)[1] == before[1] + 1


def test_a_known_name_with_other_bytes_is_refused_and_nothing_changes(app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1)])
    before = row_counts(app)
    name = photo(1)[0]
    parts = [instance_part(), file_part(*photo(7)[:2]), file_part(name, b"other bytes")]
    answer = post_parts(client, form_uid, token, parts)
    assert answer.status_code == 409
    assert name in answer.json["error"] and "nothing was stored" in answer.json["error"]
    assert row_counts(app) == before
    assert stored_files(app)[name][1] == photo(1)[1]


def test_two_different_files_with_one_name_in_a_post_are_refused(app, client, make):
    form_uid, token = make.form()
    parts = [instance_part(), file_part("a.jpg", b"one"), file_part("a.jpg", b"two")]
    answer = post_parts(client, form_uid, token, parts)
    assert answer.status_code == 400 and "two different files named 'a.jpg'" in answer.json["error"]
    assert row_counts(app) == (0, 0, 0, 0)


def test_file_names_are_the_last_segment_and_must_be_printable(app, client, make):
    form_uid, token = make.form()
    parts = [instance_part(), file_part("DCIM/Camera/a.jpg", b"one", "")]
    assert post_parts(client, form_uid, token, parts).status_code == 201
    assert stored_files(app) == {"a.jpg": ("application/octet-stream", b"one")}
    bad = [instance_part(INSTANCE.replace(b"9d2e", b"0000")), file_part("bad\x07.jpg", b"x")]
    answer = post_parts(client, form_uid, token, bad)
    assert answer.status_code == 400 and "printable" in answer.json["error"]


def test_an_edit_keeps_its_own_files_and_the_original_keeps_its(app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1)])
    edit_id = "uuid:4b7f1e2a-93c6-4d0e-a1f5-6c8d2e9b0f47"
    edited = INSTANCE.replace(
        f"<instanceID>{INSTANCE_ID}</instanceID>".encode(),
        f"<instanceID>{edit_id}</instanceID><deprecatedID>{INSTANCE_ID}</deprecatedID>".encode(),
    )
    # The edit re-sends the photo it keeps and brings a new one.
    collect_upload(client, form_uid, token, xml=edited, files=[photo(1), photo(2)])
    assert list(stored_files(app)) == [photo(1)[0]]
    assert list(stored_files(app, edit_id)) == [photo(1)[0], photo(2)[0]]
    with app.app_context():
        roots = db.session.scalars(select(Submission.root_id).order_by(Submission.id)).all()
    assert roots[0] is None and roots[1] is not None  # one submission, two versions


def test_a_json_submission_has_no_files(app, client, make):
    form_uid, token = make.form()
    answer = client.post(f"/api/v1/forms/{form_uid}/submissions?token={token}", json={"q": 1})
    assert answer.status_code == 201
    assert row_counts(app)[1:3] == (0, 0)


def test_a_post_of_101_files_keeps_them_all(app, client, make):
    """Collect's largest post: 101 files (OkHttpConnection), stored in a few statements."""
    form_uid, token = make.form()
    files = [(f"sig{n:03}.png", bytes([n]) * (100 + n), "image/png") for n in range(101)]
    collect_upload(client, form_uid, token, files=files)
    assert stored_files(app) == {name: (kind, data) for name, data, kind in files}
    assert row_counts(app)[:3] == (1, 101, 101)
