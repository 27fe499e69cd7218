"""The Source tab: test connection against a real Central, save, status, rights."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Source


def _page(form_uid: str) -> str:
    return f"/forms/{form_uid}/source"


def test_test_connection_lists_central_forms_and_saving_connects(
    app,
    make,
    editor,
    central,
    central_server,
):
    form_uid, _ = make.form()
    project, form_id = central.new_form()
    assert 'aria-current="page">Source' in editor.get(_page(form_uid)).text
    typed = {
        "url": central_server.url,
        "email": central_server.email,
        "password": central_server.password,
        "project_id": "",
        "xml_form_id": "",
        "active": "y",
    }
    tested = editor.post(_page(form_uid), {**typed, "action": "test"})
    assert tested.status_code == 200
    assert f'value="{project}:{form_id}"' in tested.text
    with app.app_context():
        assert db.session.scalar(select(Source)) is None  # a test stores nothing

    wrong = editor.post(_page(form_uid), {**typed, "password": "wrong", "action": "test"})
    assert "check the email and password" in wrong.text

    saved = editor.post(
        _page(form_uid), {**typed, "pick": f"{project}:{form_id}", "action": "save"}
    )
    assert saved.status_code == 302
    with app.app_context():
        source = db.session.scalar(select(Source))
        assert (source.project_id, source.xml_form_id) == (project, form_id)
        assert source.password == central_server.password
        assert source.send_backfill is False
    page = editor.get(_page(form_uid)).text
    assert central_server.password not in page  # write-only
    assert "Send what is fetched from before connecting" in page


def test_errors_show_on_the_form_page_and_the_dashboard(app, make, editor):
    form_uid, _ = make.form()
    with app.app_context():
        from webapp.models import Form

        form = db.session.scalar(select(Form).where(Form.uid == form_uid))
        source = Source(
            form=form, url="http://127.0.0.1:9", project_id=1, xml_form_id="x", email="a@b.c"
        )
        source.password = "pw"
        source.status, source.error_code = "error", "login"
        source.last_error = "Central refused the login of a@b.c: check the email and password."
        db.session.add(source)
        db.session.commit()
    for url in (f"/forms/{form_uid}", _page(form_uid), "/"):
        assert "check the email and password" in editor.get(url).text, url


def test_bad_settings_are_refused_and_viewers_cannot_change(app, make, as_role):
    form_uid, _ = make.form()
    editor = as_role("editor")
    refused = editor.post(
        _page(form_uid),
        {
            "url": "gopher://x",
            "email": "a@b.c",
            "password": "p",
            "project_id": "x",
            "xml_form_id": "f",
            "action": "save",
        },
    )
    assert refused.status_code == 400
    assert "Nothing was saved" in refused.text
    no_csrf = editor.post(_page(form_uid), {"action": "save"}, csrf=False)
    assert no_csrf.status_code == 400
    viewer = as_role("viewer")
    assert viewer.get(_page(form_uid)).status_code == 200
    assert viewer.post(_page(form_uid), {"action": "save"}).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(Source)) is None


def test_bad_settings_are_explained_by_their_fields_in_the_readers_language(app, make, editor):
    form_uid, _ = make.form()
    editor.post("/language", {"language": "fr"})
    refused = editor.post(
        _page(form_uid),
        {
            "url": "http://user:pw@central.example.org",
            "email": "no-at-sign",
            "password": "p",
            "project_id": "x",
            "xml_form_id": "f",
            "since": "yesterday",
            "action": "save",
        },
    )
    assert refused.status_code == 400
    page = refused.text.replace("&#39;", "'").replace("&#34;", '"')
    for french in (
        "Ne mettez ni nom d’utilisateur ni mot de passe dans l’URL",
        "Saisissez l’e-mail avec lequel l’utilisateur Central se connecte.",
        "Doit être un nombre entier (l’identifiant du projet dans Central).",
        "'yesterday' n’est pas une date ou une date-heure ISO 8601.",
    ):
        assert french in page, french
    with app.app_context():
        assert db.session.scalar(select(Source)) is None
