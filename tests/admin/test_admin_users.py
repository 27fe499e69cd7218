"""Users (administrators only): create, change role, deactivate, reset password."""

from __future__ import annotations

from tests.admin.admin_support import Browser
from webapp.extensions import db
from webapp.models import User


def user_id(app, email):
    with app.app_context():
        return User.by_email(email).id


def test_admin_creates_a_user_who_can_log_in(app, admin):
    response = admin.post(
        "/users/new", {"email": "New@Example.org", "role": "viewer", "password": "long enough"}
    )
    assert response.headers["Location"] == "/users"
    page = admin.get("/users").text
    assert "Account new@example.org created" in page and "new@example.org" in page
    assert Browser(app.test_client()).login("new@example.org", "long enough").status_code == 302


def test_create_user_errors(admin, make):
    make.user("taken@example.org")
    response = admin.post(
        "/users/new", {"email": "taken@example.org", "role": "editor", "password": "long enough"}
    )
    assert response.status_code == 400 and "already exists" in response.text
    response = admin.post(
        "/users/new", {"email": "x@example.org", "role": "editor", "password": "short"}
    )
    assert response.status_code == 400 and "At least 8 characters." in response.text
    response = admin.post("/users/new", {"email": "nope", "role": "god", "password": "long enough"})
    assert "Enter a valid email address." in response.text and "Not a valid choice" in response.text


def test_change_role_deactivate_and_reset_password(app, admin, make):
    make.user("bob@example.org", role="editor")
    bob = user_id(app, "bob@example.org")
    response = admin.post(f"/users/{bob}", {"role": "viewer", "new_password": "brand new pw"})
    assert response.headers["Location"] == "/users"
    with app.app_context():
        user = db.session.get(User, bob)
        assert user.role == "viewer" and not user.is_active_user  # "active" left unticked
        assert user.check_password("brand new pw")
    admin.post(f"/users/{bob}", {"role": "viewer", "active": "y"})
    with app.app_context():
        assert db.session.get(User, bob).is_active_user


def test_the_last_admin_cannot_be_demoted_or_deactivated(app, admin):
    me = user_id(app, "admin@example.org")
    response = admin.post(f"/users/{me}", {"role": "editor", "active": "y"})
    assert "last active administrator" in response.text
    response = admin.post(f"/users/{me}", {"role": "admin"})
    assert "You cannot deactivate your own account" in response.text or (
        "last active administrator" in response.text
    )
    with app.app_context():
        user = db.session.get(User, me)
        assert user.role == "admin" and user.is_active_user


def test_resetting_my_own_password_keeps_me_logged_in(app, admin):
    me = user_id(app, "admin@example.org")
    admin.post(f"/users/{me}", {"role": "admin", "active": "y", "new_password": "another one"})
    assert admin.get("/users").status_code == 200


def test_unknown_user_is_404(admin):
    assert admin.get("/users/999999").status_code == 404
