"""The dashboard: deliveries lately, what needs attention, background processes."""

from __future__ import annotations

from datetime import timedelta

from rq import SimpleWorker
from sqlalchemy import select

from tests.admin.admin_support import Browser, add_logs
from webapp.delivery import feed
from webapp.delivery import queue as q
from webapp.extensions import db
from webapp.models import Hook
from webapp.models.base import utcnow


def test_counts_chart_and_what_needs_attention(app, admin, make):
    form_uid, _ = make.form("Survey")
    ok_hook = make.hook(form_uid, name="CRM")
    bad_hook = make.hook(form_uid, name="Partner API")
    make.hook(form_uid, name="Old export", active=False)
    now = utcnow()
    add_logs(app, ok_hook, 3, status="success", start=now - timedelta(hours=2))
    add_logs(app, ok_hook, 4, status="success", start=now - timedelta(days=3))
    add_logs(app, bad_hook, 2, status="failed", start=now - timedelta(hours=1))
    add_logs(app, ok_hook, 5, status="success", start=now - timedelta(days=30))
    page = admin.get("/").text
    last_day = page[page.index("Last 24 hours") : page.index("Last 7 days")]
    week = page[page.index("Last 7 days") : page.index("Deliveries per day")]
    assert "<dd>3</dd>" in last_day and "<dd>2</dd>" in last_day
    assert "<dd>7</dd>" in week and "<dd>2</dd>" in week
    assert page.count('class="bar bar-success"') == 2 and page.count('class="bar bar-failed"') == 1
    assert "2 failed deliveries" in page
    with app.app_context():
        bad_uid = db.session.scalar(select(Hook.uid).where(Hook.name == "Partner API"))
    assert f"/forms/{form_uid}/hooks/{bad_uid}/logs?status=failed" in page
    assert "Survey → Old export" in page and "Disabled" in page


def test_all_good_when_nothing_failed(admin):
    page = admin.get("/").text
    assert "All good" in page and "Getting started" in page
    assert "No delivery in the last 7 days." in page


def test_worker_scheduler_and_queue_depth(app, admin):
    with app.app_context():
        connection = q.redis_connection()
        worker = SimpleWorker([q.delivery_queue(connection)], connection=connection, name="w-test")
        worker.register_birth()
        connection.hset("rq:scheduler_instance:test", "birth", 1)
        connection.expire("rq:scheduler_instance:test", 30)
        connection.zadd(feed.FEED_KEY, {"123456": 0})  # one delivery waiting in the feed
    try:
        page = admin.get("/").text
    finally:
        with app.app_context():
            worker.register_death()
            connection.delete("rq:scheduler_instance:test")
    assert "1 worker running" in page and "w-test" in page
    assert "Not running" not in page
    assert "1 delivery waiting" in page


def test_nothing_running_is_said_plainly(admin):
    page = admin.get("/").text
    assert "No worker is running" in page and "Not running" in page


def test_the_dashboard_renders_when_redis_is_down(make_app, make):
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    make.user("ed@example.org", role="editor")
    browser = Browser(down.test_client())
    browser.login("ed@example.org")
    response = browser.get("/")
    assert response.status_code == 200
    assert "Redis is unreachable" in response.text


def test_report_buttons_for_admins_only_and_only_when_provided(app, as_role):
    admin, editor = as_role("admin"), as_role("editor")
    page = admin.get("/").text
    for endpoint, label in (
        ("reports.send_test_email", "Send me a test email"),
        ("reports.send_now", "Send due reports now"),
    ):
        assert (label in page) == (endpoint in app.view_functions)
    assert "Send due reports now" not in editor.get("/").text
    # Without the reports module's views, the page still renders.
    saved = dict(app.view_functions)
    for name in ("reports.send_test_email", "reports.send_now"):
        app.view_functions.pop(name, None)
    try:
        response = admin.get("/")
    finally:
        app.view_functions.update(saved)
    assert response.status_code == 200 and "Send due reports now" not in response.text
