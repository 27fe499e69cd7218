"""The panel and edits: a submission's versions with what changed, and the hook's send_edits."""

from __future__ import annotations

import re

from tests.admin.admin_support import post_submission
from tests.admin.test_admin_hooks import hook_data, the_hook


def test_the_submission_page_shows_versions_and_changes(client, editor, make):
    uid, token = make.form()
    first = post_submission(client, uid, token, {"v": "first", "meta": {"instanceID": "uuid:e1"}})
    post_submission(
        client,
        uid,
        token,
        {"v": "second", "extra": 1, "meta": {"instanceID": "uuid:e2", "deprecatedID": "uuid:e1"}},
    )
    listing = editor.get(f"/forms/{uid}/submissions").text
    assert len(re.findall(r'href="/forms/[^/]+/submissions/(\d+)"', listing)) == 1
    assert "2 versions" in listing
    page = editor.get(f"/forms/{uid}/submissions/{first['id']}").text
    assert "Version 1" in page and "Version 2" in page and "uuid:e2" in page
    # What changed: v and the new field, and meta/instanceID.
    changed = re.findall(r'<th scope="row" class="mono">([^<]+)</th>', page)
    assert changed == ["extra", "meta/deprecatedID", "meta/instanceID", "v"]
    assert "&#34;first&#34;" in page and "&#34;second&#34;" in page


def test_a_later_version_link_shows_its_submission(app, client, editor, make):
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Submission

    uid, token = make.form()
    first = post_submission(client, uid, token, {"meta": {"instanceID": "uuid:l1"}})
    post_submission(
        client, uid, token, {"meta": {"instanceID": "uuid:l2", "deprecatedID": "uuid:l1"}}
    )
    with app.app_context():
        version_id = db.session.scalar(
            select(Submission.id).where(Submission.instance_id == "uuid:l2")
        )
    response = editor.get(f"/forms/{uid}/submissions/{version_id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/forms/{uid}/submissions/{first['id']}")


def test_the_hook_form_sets_send_edits_off_by_default(app, editor, make):
    form_uid, _ = make.form()
    page = editor.get(f"/forms/{form_uid}/hooks/new").text
    assert "Also send edits" in page and "X-Formhooks-Event: submission.edited" in page
    editor.post(f"/forms/{form_uid}/hooks/new", hook_data())
    hook = the_hook(app)
    assert hook.send_edits is False
    unchecked = editor.get(f"/forms/{form_uid}/hooks/{hook.uid}").text
    assert not re.search(r'<input[^>]*\bchecked\b[^>]*name="send_edits"', unchecked)
    editor.post(f"/forms/{form_uid}/hooks/{hook.uid}", hook_data(send_edits="y"))
    assert the_hook(app).send_edits is True
    edit_page = editor.get(f"/forms/{form_uid}/hooks/{hook.uid}").text
    assert re.search(r'<input[^>]*\bchecked\b[^>]*name="send_edits"', edit_page)
