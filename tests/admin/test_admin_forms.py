"""Forms in the panel: list, create, edit, delete, webhook URL and token."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from tests.admin.admin_support import post_submission
from webapp.extensions import db
from webapp.models import Form, Hook, Submission, User


def test_empty_list_invites_to_create_a_form(editor, viewer):
    assert "Create a form" in editor.get("/forms").text
    page = viewer.get("/forms").text
    assert "No form yet" in page and "/forms/new" not in page


def test_create_then_see_url_token_and_curl_examples(app, editor):
    response = editor.post("/forms/new", {"name": "  Household survey  "})
    assert response.status_code == 302
    with app.app_context():
        form = db.session.scalars(select(Form)).one()
        uid, token = form.uid, form.ingest_token
        assert form.name == "Household survey" and form.owner.email == "editor@example.org"
    assert response.headers["Location"] == f"/forms/{uid}"
    page = editor.get(f"/forms/{uid}").text
    assert "Form “Household survey” created" in page
    url = f"http://localhost/api/v1/forms/{uid}/submissions"
    assert f'value="{url}"' in page and f'value="{token}"' in page
    assert f"Authorization: Bearer {token}" in page  # JSON example
    assert f'-u "kobo:{token}"' in page  # XML example
    assert "application/xml" in page
    assert "never" in page  # last received


def test_the_curl_example_works(app, client, editor):
    editor.post("/forms/new", {"name": "F"})
    with app.app_context():
        form = db.session.scalars(select(Form)).one()
        uid, token = form.uid, form.ingest_token
    page = editor.get(f"/forms/{uid}").text
    body = re.search(r"--data '(\{.*?\})'", page.replace("&#34;", '"')).group(1)
    response = client.post(
        f"/api/v1/forms/{uid}/submissions",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    page = editor.get(f"/forms/{uid}").text
    assert '<span class="stat-value">1</span>' in page


def test_form_list_shows_counts_and_last_received(client, editor, make):
    uid, token = make.form("Survey A")
    make.form("Survey B")
    post_submission(client, uid, token, {"a": 1, "meta": {"instanceID": "one"}})
    post_submission(client, uid, token, {"a": 2, "meta": {"instanceID": "two"}})
    page = editor.get("/forms").text
    row = page[page.index("Survey A") :]
    assert '">2</a>' in row[:600] and "just now" in row[:600]
    assert "never" in page[page.index("Survey B") :]


def test_viewers_do_not_see_the_token(make, viewer):
    uid, token = make.form()
    page = viewer.get(f"/forms/{uid}").text
    assert token not in page and "••••" in page
    assert "Only editors and administrators can see the token" in page


def test_edit_name_and_owner(app, editor, make):
    uid, _ = make.form("Old name")
    make.user("other@example.org")
    with app.app_context():
        other_id = User.by_email("other@example.org").id
    response = editor.post(f"/forms/{uid}/edit", {"name": "New name", "owner_id": other_id})
    assert response.headers["Location"] == f"/forms/{uid}"
    with app.app_context():
        form = db.session.scalar(select(Form).where(Form.uid == uid))
        assert (form.name, form.owner_id) == ("New name", other_id)
    response = editor.post(f"/forms/{uid}/edit", {"name": "", "owner_id": other_id})
    assert response.status_code == 200 and "Enter a name." in response.text


def test_regenerate_the_token(app, client, editor, make):
    uid, old = make.form()
    response = editor.post(f"/forms/{uid}/token")
    assert response.headers["Location"] == f"/forms/{uid}#token"
    page = editor.get(f"/forms/{uid}").text
    assert "The old one no longer works" in page and old not in page
    answer = client.post(
        f"/api/v1/forms/{uid}/submissions",
        json={"a": 1},
        headers={"Authorization": f"Bearer {old}"},
    )
    assert answer.status_code == 401


def test_delete_asks_first_then_deletes_everything(app, client, editor, make):
    uid, token = make.form("Doomed")
    make.hook(uid)
    post_submission(client, uid, token)
    page = editor.get(f"/forms/{uid}/delete").text
    assert "Delete the form “Doomed”?" in page
    assert "1 submission" in page and "1 REST service and its logs" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Form)) == 1
    response = editor.post(f"/forms/{uid}/delete")
    assert response.headers["Location"] == "/forms"
    assert "and all its data were deleted" in editor.get("/forms").text
    with app.app_context():
        for model in (Form, Hook, Submission):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0


def test_unknown_form_is_404(editor):
    assert editor.get("/forms/aNope").status_code == 404
    assert editor.post("/forms/aNope/token").status_code == 404
