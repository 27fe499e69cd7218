"""The admin panel in a real headless Chromium (docs/admin.md).

Debian's /usr/bin/chromium is driven by Playwright (`playwright install` cannot
download browsers here; scripts/ensure_debian_package.sh installs the package). The
app is served by a real werkzeug server in a thread; deliveries are made by a
real RQ SimpleWorker in burst mode, retries are made due as rq's own tests do.
Screenshots of the main pages go to test-artifacts/screenshots/.

These tests run on SQLite only: the pages and queries are the same on both
databases and the test-client tests run on both, while a browser run costs
seconds that doubling would not buy much.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.admin.admin_support import PASSWORD
from tests.helpers import LOOPBACK_HOOKS, make_retries_due, run_worker
from webapp.extensions import db
from webapp.models import DeliveryLog

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"Chromium not found at {CHROMIUM}: run scripts/ensure_debian_package.sh "
        "(apt-get install chromium) to run the browser tests",
        allow_module_level=True,
    )

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(params=["sqlite"])
def db_backend(request, database_urls):
    """SQLite only (see the module docstring)."""
    return "sqlite", database_urls["sqlite"]


pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


class LiveServer:
    """The app on a real HTTP server (werkzeug, threaded) on a free loopback port."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live(app):
    server = LiveServer(app)
    yield server
    server.close()


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    # A CSP violation or a script error shows up as a console error. (A form page
    # re-rendered with its errors answers 400, which Chromium also logs: not a fault.)
    errors = [e for e in errors if not e.startswith("Failed to load resource")]
    assert errors == [], errors


def shot(page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def log_statuses(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(DeliveryLog.status).order_by(DeliveryLog.id)))


def post_submission(url: str, token: str, instance: str) -> None:
    body = {"q1": "alpha", "q2": "beta", "group": {"q3": "gamma"}, "meta": {"instanceID": instance}}
    response = requests.post(
        url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 201, response.text


def log_in(page, live, email: str) -> None:
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live.url + "/")


def test_staff_member_sets_up_a_form_and_a_hook_then_recovers_a_failure(
    app, live, make, page, endpoint
):
    make.user("amina@example.org", role="admin", password=PASSWORD)

    # Log in.
    page.goto(live.url + "/")
    page.wait_for_url(re.compile(r"/login"))
    shot(page, "01-login")
    log_in(page, live, "amina@example.org")
    assert page.get_by_role("heading", name="Dashboard").is_visible()

    # Create a form.
    page.get_by_role("link", name="Create your first form").click()
    page.get_by_label("Name", exact=True).fill("Household survey")
    page.get_by_role("button", name="Create form").click()
    page.get_by_role("heading", name="Household survey").wait_for()
    webhook_url = page.locator("#webhook-url").input_value()
    token = page.locator("#ingest-token").input_value()
    assert webhook_url.endswith("/submissions") and len(token) > 20
    shot(page, "03-form")

    # Create a hook: three subset tags with Enter and Tab, remove one.
    page.get_by_role("link", name="Add a REST service").first.click()
    page.get_by_label("Name", exact=True).fill("CRM")
    page.get_by_label("Endpoint URL").fill(endpoint.url)
    tags = page.locator("#subset_fields-entry")
    tags.fill("q1")
    tags.press("Enter")
    tags.fill("q2")
    tags.press("Tab")
    assert tags.evaluate("el => el === document.activeElement"), "Tab with text must add a tag"
    tags.fill("q3")
    tags.press("Enter")
    assert page.locator(".tag span").all_inner_texts() == ["q1", "q2", "q3"]
    page.get_by_role("button", name="Remove q2").click()
    assert page.locator(".tag span").all_inner_texts() == ["q1", "q3"]
    tags.fill("extra")
    tags.press("Enter")
    tags.press("Backspace")
    assert page.locator(".tag span").all_inner_texts() == ["q1", "q3"]

    # An invalid wrapper: the error is shown next to the field, nothing is saved.
    wrapper = page.get_by_label("Custom wrapper (JSON only)")
    wrapper.fill('{"data": %SUBMISSION%')
    page.get_by_role("button", name="Create REST service").click()
    error = page.locator("#payload_template-error")
    error.wait_for()
    assert "not valid JSON" in error.inner_text()
    assert page.locator("#payload_template").get_attribute("aria-invalid") == "true"
    assert page.locator(".tag span").all_inner_texts() == ["q1", "q3"]  # kept across the error
    shot(page, "04-hook-error")

    # The wrapper is hidden for XML and shown again for JSON.
    page.get_by_label("XML").check()
    assert not page.locator("#wrapper-field").is_visible()
    page.get_by_label("JSON", exact=True).check()
    assert page.locator("#wrapper-field").is_visible()

    wrapper.fill('{"source": "formhooks", "data": %SUBMISSION%}')
    page.get_by_role("button", name="Create REST service").click()
    page.get_by_text("REST service “CRM” created").wait_for()

    # A submission arrives; the worker sends it; its log turns to success.
    post_submission(webhook_url, token, "uuid:first")
    page.get_by_role("link", name="Logs").first.click()
    assert page.locator("tbody tr").first.get_attribute("data-status") == "pending"
    run_worker(app)
    page.reload()
    first_row = page.locator("tbody tr").first
    assert first_row.get_attribute("data-status") == "success"
    assert "Delivered" in first_row.inner_text()
    assert json.loads(endpoint.requests[0]["body"]) == {
        "source": "formhooks",
        "data": {"q1": "alpha", "group": {"q3": "gamma"}},
    }

    # The endpoint breaks: a new submission fails, after all its retries.
    endpoint.statuses = [500]
    post_submission(webhook_url, token, "uuid:second")
    run_worker(app)
    for _retry in range(3):
        make_retries_due(app)
        run_worker(app)
    assert log_statuses(app) == ["success", "failed"]
    page.reload()
    failed_row = page.locator("tbody tr[data-status='failed']")
    assert "uuid:second" in failed_row.inner_text()
    shot(page, "06-logs-failed")

    # The endpoint is fixed; retry from the logs page.
    endpoint.statuses = [200]
    failed_row.get_by_role("button", name="Retry uuid:second").click()
    page.get_by_text("will be sent again").wait_for()
    run_worker(app)
    page.reload()
    assert page.locator("tbody tr[data-status='failed']").count() == 0
    assert log_statuses(app) == ["success", "success"]
    shot(page, "07-logs-recovered")

    # Detail of that log: every attempt and the body sent.
    page.get_by_role("link", name="uuid:second").click()
    page.get_by_role("heading", name="Attempts").wait_for()
    assert page.locator(".attempt").count() == 5
    shot(page, "08-log-detail")

    _screenshot_other_pages(page, live)


def _screenshot_other_pages(page, live) -> None:
    """The remaining main pages, on a wide screen and one on a phone."""
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Needs attention").wait_for()
    shot(page, "02-dashboard")
    page.get_by_role("link", name="Forms").first.click()
    shot(page, "03-forms")
    page.get_by_role("link", name="Household survey").click()
    page.get_by_role("link", name="REST services").first.click()
    shot(page, "05-hooks")
    page.get_by_role("link", name="CRM").click()
    page.locator("#preview-body").wait_for()
    shot(page, "05-hook-edit")
    page.get_by_role("link", name="Household survey").first.click()
    page.get_by_role("link", name="Submissions").first.click()
    shot(page, "09-submissions")
    page.get_by_role("link", name="uuid:first").click()
    shot(page, "09-submission-detail")
    page.goto(live.url + "/profile")
    shot(page, "10-profile")
    page.goto(live.url + "/users")
    shot(page, "11-users")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.url + "/")
    shot(page, "12-dashboard-phone")
    page.goto(live.url + "/forms")
    page.get_by_role("link", name="Household survey").click()
    page.get_by_role("link", name="REST services").first.click()
    page.get_by_role("link", name="CRM").click()
    shot(page, "13-hook-edit-phone")


def test_a_viewer_sees_no_write_buttons_and_the_french_panel(app, live, make, page):
    form_uid, _token = make.form("Enquête ménages")
    make.hook(form_uid, name="Partenaire")
    make.user("viewer@example.org", role="viewer", password=PASSWORD)
    log_in(page, live, "viewer@example.org")
    page.get_by_role("button", name="Français").click()
    page.get_by_role("heading", name="Tableau de bord").wait_for()
    page.get_by_role("link", name="Formulaires").first.click()
    page.get_by_role("link", name="Enquête ménages").click()
    assert page.locator("#ingest-token").count() == 0  # the token is masked for viewers
    assert page.get_by_role("link", name="Modifier").count() == 0
    page.get_by_role("link", name="Services REST").first.click()
    assert page.get_by_role("switch").count() == 0
    page.get_by_role("link", name="Partenaire").click()
    assert page.get_by_role("button", name="Enregistrer").count() == 0
    assert page.locator("#hook-form fieldset[disabled]").count() == 1
    shot(page, "14-hook-viewer-fr")


def test_the_progress_bar_of_a_backfill_moves_until_done(app, live, make, page, endpoint):
    """The "Send again" page follows a running backfill (static/bulk_progress.js)."""
    make.user("amina@example.org", role="editor", password=PASSWORD)
    form_uid, token = make.form(owner_email="amina@example.org")
    for n in range(4):
        post_submission(f"{live.url}/api/v1/forms/{form_uid}/submissions", token, f"uuid:b{n}")
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    log_in(page, live, "amina@example.org")
    page.goto(f"{live.url}/forms/{form_uid}/hooks/{hook_uid}")
    page.get_by_role("link", name="Send again").click()
    page.get_by_role("button", name="Send existing submissions").click()
    page.get_by_text("4 submissions will be sent in the background.").wait_for()
    bar = page.locator("[data-bulk] progress")
    assert bar.get_attribute("value") == "0"
    assert page.locator("[data-bulk] [data-field=state]").inner_text() == "Running"

    run_worker(app)  # sent while the page is open: its script sees the progress
    # (Locator waits: a string predicate would be an eval, which the CSP refuses.)
    page.locator("[data-bulk] [data-field=state]", has_text="Done").wait_for()
    assert bar.evaluate("el => el.value") == 100
    assert page.locator("[data-bulk] [data-field=succeeded]").inner_text() == "4"
    assert not page.locator("[data-cancel]").is_visible()  # nothing left to cancel
    assert len(endpoint.requests) == 4
    shot(page, "10-send-again")
