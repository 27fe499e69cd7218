"""The command line (README "A quick tour"), run through Flask's CLI runner."""

from __future__ import annotations

import json

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import ApiToken, Form, Hook, User


def test_users_create_token_and_forms_create(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Ana@Example.org", "--password", "long enough"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["users", "create", "ana@example.org", "--password", "long enough"])
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(args=["users", "create", "b@example.org", "--password", "short"])
    assert short.exit_code != 0 and "8 characters" in short.output
    token = runner.invoke(args=["users", "token", "ana@example.org"]).output.strip()
    assert token.startswith("fht_") and "\n" not in token
    created = runner.invoke(args=["forms", "create", "Survey", "--owner", "ana@example.org"])
    form = json.loads(created.output)
    assert set(form) == {"uid", "name", "ingest_url", "ingest_token"}
    assert form["ingest_url"].endswith(f"/api/v1/forms/{form['uid']}/submissions")
    with app.app_context():
        user = User.by_email("ana@example.org")
        assert user.role == "editor"
        assert ApiToken.authenticate(token).id == user.id
        stored = db.session.scalar(select(Form).where(Form.uid == form["uid"]))
        assert stored.check_ingest_token(form["ingest_token"])
        assert form["ingest_token"] not in stored.ingest_token_encrypted


def test_secrets_rotate_moves_every_secret_to_the_new_key(app, make, make_app):
    old = make_app(ENCRYPTION_KEY="old passphrase")
    with old.app_context():
        user = User(email="o@example.org", role="admin", password_hash="!")
        form = Form(name="F", owner=user)
        hook = Hook(
            form=form,
            name="H",
            endpoint="https://example.org/h",
            auth_level="basic_auth",
            username="u",
        )
        hook.password = "pw"
        hook.custom_headers = {"X-Key": "secret"}
        db.session.add_all([user, form, hook])
        db.session.commit()
        token = form.ingest_token
        old_signing = hook.signing_secret
        signing = hook.rotate_signing_secret()  # the previous secret is stored too
        db.session.commit()
    both = make_app(ENCRYPTION_KEY="new passphrase,old passphrase")
    result = both.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0 and "Re-encrypted 5 secrets" in result.output
    new = make_app(ENCRYPTION_KEY="new passphrase")
    with new.app_context():
        hook = db.session.scalar(select(Hook))
        assert (hook.password, hook.custom_headers) == ("pw", {"X-Key": "secret"})
        assert hook.signing_secret == signing
        assert len(hook.signing_keys(hook.signing_secret_rotated_at)) == 2  # both decrypt
        assert old_signing.startswith("whsec_") and old_signing != signing
        assert db.session.scalar(select(Form)).ingest_token == token
    wrong = make_app(ENCRYPTION_KEY="another passphrase")
    failed = wrong.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert failed.exit_code == 1 and "Nothing was changed" in failed.output
    with new.app_context():
        assert db.session.scalar(select(Hook)).password == "pw"
