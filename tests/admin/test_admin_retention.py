"""The dashboard's "Data retention" card: the settings in effect and the last run."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from tests.admin.admin_support import Browser
from tests.retention.retention_support import age, post
from webapp.extensions import db
from webapp.models import DeliveryLog


@pytest.fixture
def app_env(app_env):
    app_env["SUBMISSION_RETENTION_DAYS"] = "90"
    app_env["LOG_RETENTION_DAYS"] = "14"
    return app_env


def card(page: str) -> str:
    """The retention card's text, tags and spaces squeezed."""
    start = page.index("Data retention")
    html = page[start : page.index("</section>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_settings_and_the_last_run_are_shown_to_every_role(app, as_role, make, client):
    viewer = as_role("viewer")
    before = card(viewer.get("/").text)
    assert "Deleted 90 days after their last version arrived" in before
    assert "deleted 14 days after it finished" in before
    assert "None yet: the scheduler runs it every 60 minutes." in before

    form_uid, token = make.form()
    make.hook(form_uid)
    for instance_id in ("uuid:1", "uuid:2", "uuid:3"):
        post(client, form_uid, token, instance_id)
    with app.app_context():
        db.session.execute(update(DeliveryLog).where(DeliveryLog.id > 1).values(status="success"))
        db.session.commit()
    age(app, ["uuid:1", "uuid:2", "uuid:3"], 91)
    assert app.test_cli_runner().invoke(args=["retention", "run"]).exit_code == 0

    for role in ("viewer", "admin"):
        after = card(as_role(role).get("/").text)
        assert "just now" in after and "None yet" not in after
        assert "2 submissions deleted (2 deliveries, 0 files)" in after
        assert "1 old submission kept because a delivery is pending" in after
        assert "0 delivery attempts deleted" in after
        assert "stopped" not in after


def test_unset_says_everything_is_kept_and_shows_no_run(make_app, make):
    off = make_app(SUBMISSION_RETENTION_DAYS="", LOG_RETENTION_DAYS="")
    make.user("ed@example.org", role="editor")
    browser = Browser(off.test_client())
    browser.login("ed@example.org")
    text = card(browser.get("/").text)
    assert "Kept forever (SUBMISSION_RETENTION_DAYS is not set)." in text
    assert "Kept forever (LOG_RETENTION_DAYS is not set)." in text
    assert "Last run" not in text


def test_the_card_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
