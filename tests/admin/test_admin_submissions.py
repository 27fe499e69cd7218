"""Submissions of a form: list with delivery summaries, detail in JSON or XML."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.admin.admin_support import add_logs, post_submission
from tests.helpers import add_big_submissions, fixture_bytes, peak_memory
from webapp.admin.submissions import PAGE_SIZE
from webapp.extensions import db
from webapp.models import Submission


def test_list_and_detail_of_a_json_submission_with_its_deliveries(app, client, editor, make):
    uid, token = make.form()
    make.hook(uid, name="CRM")
    answer = post_submission(client, uid, token, {"name": "Ama", "meta": {"instanceID": "uuid:s1"}})
    page = editor.get(f"/forms/{uid}/submissions").text
    assert "uuid:s1" in page and "Pending 1" in page
    detail = editor.get(f"/forms/{uid}/submissions/{answer['id']}").text
    assert "&#34;name&#34;: &#34;Ama&#34;" in detail  # indented JSON
    assert "CRM" in detail and "Pending" in detail


def test_an_xml_submission_is_shown_indented(client, editor, make):
    uid, token = make.form()
    response = client.post(
        f"/api/v1/forms/{uid}/submissions",
        data=fixture_bytes("odk_instance.xml"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
    )
    detail = editor.get(f"/forms/{uid}/submissions/{response.json['id']}").text
    assert "&lt;meta&gt;" in detail
    assert re.search(r"\n  +&lt;", detail)  # indented


def test_an_edited_submission_shows_both_versions(client, editor, make):
    uid, token = make.form()
    first = post_submission(client, uid, token, {"v": "original", "meta": {"instanceID": "e1"}})
    post_submission(client, uid, token, {"v": "edited", "meta": {"instanceID": "e1"}})
    detail = editor.get(f"/forms/{uid}/submissions/{first['id']}").text
    assert "Edited once" in detail
    assert "original" in detail and "edited" in detail
    assert "Edits are stored but not sent" in detail


def test_pages_of_submissions(app, editor, make):
    uid, _ = make.form()
    hook_uid = make.hook(uid)
    add_logs(app, hook_uid, PAGE_SIZE + 3)
    page = editor.get(f"/forms/{uid}/submissions").text
    assert len(re.findall(r'href="/forms/[^/]+/submissions/(\d+)"', page)) == PAGE_SIZE
    older = re.search(r'rel="next" href="([^"]+)"', page).group(1)
    second = editor.get(older.replace("&amp;", "&")).text
    rows = re.findall(r'href="/forms/[^/]+/submissions/(\d+)"', second)
    assert len(rows) == 3


def test_empty_state_and_404(editor, make):
    uid, _ = make.form()
    assert "No submission yet" in editor.get(f"/forms/{uid}/submissions").text
    assert editor.get(f"/forms/{uid}/submissions/999999").status_code == 404


def test_a_submission_of_another_form_is_not_found(app, client, editor, make):
    uid_a, token_a = make.form("A")
    uid_b, _ = make.form("B")
    answer = post_submission(client, uid_a, token_a)
    assert editor.get(f"/forms/{uid_b}/submissions/{answer['id']}").status_code == 404
    with app.app_context():
        assert db.session.get(Submission, answer["id"]) is not None
        assert db.session.scalar(select(Submission.instance_id)) == "uuid:one"


def test_the_list_does_not_load_bodies(app, editor, make):
    """10 bodies of 9 MB: the page's memory stays far below one body's size."""
    uid, _ = make.form()
    ids = add_big_submissions(app, uid)
    response, peak = peak_memory(lambda: editor.get(f"/forms/{uid}/submissions"))
    assert response.status_code == 200
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert len(re.findall(r'href="/forms/[^/]+/submissions/(\d+)"', response.text)) == len(ids)
    assert "9.4 MB" in response.text  # the size, computed by the database
    assert "{&#34;n&#34;: 0, &#34;blob&#34;: &#34;xxx" in response.text  # an excerpt


def test_the_list_shows_the_latest_versions_size_and_excerpt(client, editor, make):
    uid, token = make.form()
    post_submission(client, uid, token, {"v": "first-body", "meta": {"instanceID": "uuid:x1"}})
    edit = {
        "v": "edited-body " + "y" * 3000,
        "meta": {"instanceID": "uuid:x2", "deprecatedID": "uuid:x1"},
    }
    post_submission(client, uid, token, edit)
    listing = editor.get(f"/forms/{uid}/submissions").text
    assert len(re.findall(r'href="/forms/[^/]+/submissions/(\d+)"', listing)) == 1
    assert "2 versions" in listing
    assert "edited-body" in listing and "first-body" not in listing
    assert "3.1 kB" in listing  # the edit's size, computed by the database
