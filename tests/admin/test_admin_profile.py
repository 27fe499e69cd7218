"""The profile page: preferences, password, API tokens shown once."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.admin.admin_support import PASSWORD, Browser
from webapp.extensions import db
from webapp.models import ApiToken, User


def test_create_a_token_shown_once_then_revoke_it(app, viewer):
    response = viewer.post("/profile", {"action": "token_create", "token-token_name": "Script"})
    assert response.status_code == 200
    token = re.search(r'id="new-token" value="(fht_[^"]+)"', response.text).group(1)
    assert "it will not be shown again" in response.text
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        assert ApiToken.authenticate(token).email == "viewer@example.org"
        token_id = db.session.scalar(select(ApiToken.id))
    page = viewer.get("/profile").text
    assert token not in page and token[:12] in page
    response = viewer.post("/profile", {"action": "token_revoke", "revoke-token_id": token_id})
    assert "revoked" in viewer.get(response.headers["Location"]).text
    with app.app_context():
        assert ApiToken.authenticate(token) is None


def test_cannot_revoke_someone_elses_token(app, viewer, make):
    make.user("other@example.org")
    with app.app_context():
        _row, _plain = ApiToken.issue(User.by_email("other@example.org"), name="theirs")
        db.session.commit()
        token_id = db.session.scalar(select(ApiToken.id))
    response = viewer.post("/profile", {"action": "token_revoke", "revoke-token_id": token_id})
    assert "does not exist" in viewer.get(response.headers["Location"]).text
    with app.app_context():
        assert db.session.get(ApiToken, token_id) is not None


def test_change_password(app, editor):
    response = editor.post(
        "/profile",
        {
            "action": "password",
            "pw-current_password": "wrong",
            "pw-new_password": "new password",
            "pw-confirm": "new password",
        },
    )
    assert response.status_code == 400 and "This is not your current password." in response.text
    response = editor.post(
        "/profile",
        {
            "action": "password",
            "pw-current_password": PASSWORD,
            "pw-new_password": "new password",
            "pw-confirm": "different",
        },
    )
    assert "The two passwords differ." in response.text
    response = editor.post(
        "/profile",
        {
            "action": "password",
            "pw-current_password": PASSWORD,
            "pw-new_password": "new password",
            "pw-confirm": "new password",
        },
    )
    assert "Your password is changed" in editor.get(response.headers["Location"]).text
    assert Browser(app.test_client()).login("editor@example.org", "new password").status_code == 302


def test_preferences(app, editor):
    response = editor.post("/profile", {"action": "preferences", "prefs-language": "fr"})
    page = editor.get(response.headers["Location"]).text
    assert '<html lang="fr">' in page
    with app.app_context():
        user = User.by_email("editor@example.org")
        assert user.language == "fr" and user.report_opt_in is False
    editor.post(
        "/profile", {"action": "preferences", "prefs-language": "en", "prefs-report_opt_in": "y"}
    )
    with app.app_context():
        assert User.by_email("editor@example.org").report_opt_in is True
