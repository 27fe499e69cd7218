"""A source's password and Central session token are stored encrypted and rotated."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Form, Source, User


def test_secrets_rotate_includes_sources(app, make_app):
    old = make_app(ENCRYPTION_KEY="old passphrase")
    with old.app_context():
        user = User(email="o@example.org", role="admin", password_hash="!")
        form = Form(name="F", owner=user)
        source = Source(
            form=form, url="https://c.example.org", project_id=1, xml_form_id="f", email="a@b.c"
        )
        source.password = "central pw"
        db.session.add_all([user, form, source])
        db.session.commit()
        assert "central pw" not in source.password_encrypted
    both = make_app(ENCRYPTION_KEY="new passphrase,old passphrase")
    result = both.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0 and "Re-encrypted 2 secrets" in result.output
    new = make_app(ENCRYPTION_KEY="new passphrase")
    with new.app_context():
        assert db.session.scalar(select(Source)).password == "central pw"
