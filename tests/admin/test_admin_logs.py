"""The logs of a hook: filters, keyset pagination, retries, the detail page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tests.admin.admin_support import add_logs, post_submission
from tests.helpers import LOOPBACK_HOOKS, make_retries_due, run_worker
from webapp.admin.log_queries import PAGE_SIZE, LogFilters, filtered
from webapp.extensions import db
from webapp.models import DeliveryLog, Hook

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


def instance_ids(html: str) -> list[str]:
    return re.findall(r'<a class="mono" href="[^"]+/logs/[^"]+">([^<]+)</a>', html)


def next_link(html: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def test_keyset_pages_cover_every_log_once_in_both_directions(app, editor, make):
    form_uid, _ = make.form()
    hook_uid = make.hook(form_uid)
    count = PAGE_SIZE * 2 + 7
    add_logs(app, hook_uid, count, status="success")
    base = f"/forms/{form_uid}/hooks/{hook_uid}/logs"
    pages, url = [], base
    while url:
        html = editor.get(url).text
        pages.append(instance_ids(html))
        url = next_link(html, "next")
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 7]
    seen = [i for p in pages for i in p]
    assert len(set(seen)) == count
    # Back from the last page to the first with "Newer".
    back = next_link(html, "prev")
    html = editor.get(back).text
    assert instance_ids(html) == pages[1]
    html = editor.get(next_link(html, "prev")).text
    assert instance_ids(html) == pages[0]
    assert next_link(html, "prev") is None


def test_newest_first(app, editor, make):
    form_uid, _ = make.form()
    hook_uid = make.hook(form_uid)
    old = add_logs(app, hook_uid, 1, start=datetime(2025, 1, 1, tzinfo=UTC))
    new = add_logs(app, hook_uid, 1, start=datetime(2025, 6, 1, tzinfo=UTC))
    html = editor.get(f"/forms/{form_uid}/hooks/{hook_uid}/logs").text
    assert html.index(new[0]) < html.index(old[0])


def test_filters_by_status_date_and_instance_id(app, editor, make):
    form_uid, _ = make.form()
    hook_uid = make.hook(form_uid)
    add_logs(app, hook_uid, 3, status="success", start=datetime(2025, 3, 1, 12, tzinfo=UTC))
    add_logs(app, hook_uid, 2, status="failed", start=datetime(2025, 3, 2, 12, tzinfo=UTC))
    add_logs(app, hook_uid, 1, status="pending", start=datetime(2025, 3, 3, 12, tzinfo=UTC))
    base = f"/forms/{form_uid}/hooks/{hook_uid}/logs"
    assert len(instance_ids(editor.get(base).text)) == 6
    html = editor.get(base + "?status=failed").text
    assert len(instance_ids(html)) == 2 and 'data-status="success"' not in html
    html = editor.get(base + "?from=2025-03-02&to=2025-03-02").text
    assert len(instance_ids(html)) == 2 and "2 logs match" in html
    html = editor.get(base + "?from=2025-03-02").text
    assert len(instance_ids(html)) == 3
    wanted = instance_ids(html)[0]
    html = editor.get(base + "?q=" + wanted[-6:]).text
    assert instance_ids(html) == [wanted]
    html = editor.get(base + "?q=nothing-like-this").text
    assert "No log matches" in html
    html = editor.get(base + "?from=yesterday").text
    assert "is not a date" in html and len(instance_ids(html)) == 6
    html = editor.get(base + "?q=50%25_").text  # LIKE wildcards are searched literally
    assert "No log matches" in html


def test_empty_logs_page_explains_what_will_appear(editor, make):
    form_uid, _ = make.form()
    hook_uid = make.hook(form_uid)
    html = editor.get(f"/forms/{form_uid}/hooks/{hook_uid}/logs").text
    assert "Nothing sent yet" in html


def test_retry_one_and_retry_all_failed(app, client, editor, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    uids = add_logs(app, hook_uid, 3, status="failed")
    base = f"/forms/{form_uid}/hooks/{hook_uid}/logs"
    response = editor.post(f"{base}/{uids[0]}/retry", {"next": base + "?status=failed"})
    assert response.headers["Location"] == base + "?status=failed"
    assert "will be sent again" in editor.get(response.headers["Location"]).text
    run_worker(app)
    assert len(endpoint.requests) == 1
    # Retrying a log that is not failed says so and changes nothing.
    response = editor.post(f"{base}/{uids[0]}/retry")
    assert "Only a failed delivery can be retried" in editor.get(response.headers["Location"]).text
    response = editor.post(f"{base}/retry")
    assert "2 failed deliveries will be sent again" in editor.get(response.headers["Location"]).text
    run_worker(app)
    assert len(endpoint.requests) == 3
    with app.app_context():
        statuses = set(db.session.scalars(select(DeliveryLog.status)))
    assert statuses == {"success"}
    response = editor.post(f"{base}/retry")
    assert "There was no failed delivery" in editor.get(response.headers["Location"]).text


def test_detail_shows_every_attempt_and_the_body(app, client, editor, make, endpoint):
    endpoint.statuses = [503, 201]
    form_uid, token = make.form()
    hook_uid = make.hook(
        form_uid,
        endpoint=endpoint.url,
        auth_level="basic_auth",
        username="crm",
        password="hunter22",
        custom_headers={"X-Api-Key": "very-secret"},
    )
    post_submission(client, form_uid, token, {"q1": "a", "meta": {"instanceID": "uuid:d1"}})
    run_worker(app)
    make_retries_due(app)
    run_worker(app)
    with app.app_context():
        log_uid = db.session.scalar(select(DeliveryLog.uid))
    html = editor.get(f"/forms/{form_uid}/hooks/{hook_uid}/logs/{log_uid}").text
    assert "uuid:d1" in html
    assert html.count('class="attempt attempt-') == 2
    assert "Attempt 1" in html and "Attempt 2" in html
    assert "HTTP 503" in html and "answer 1: 503" in html and "answer 2: 201" in html
    assert "&#34;q1&#34;:&#34;a&#34;" in html or "&#34;q1&#34;: &#34;a&#34;" in html
    assert "very-secret" not in html and "hunter22" not in html
    assert "Basic (crm:••••22)" in html and "X-Api-Key" in html


def test_a_log_of_another_hook_is_not_found(app, editor, make):
    form_uid, _ = make.form()
    hook_a, hook_b = make.hook(form_uid, name="A"), make.hook(form_uid, name="B")
    [uid] = add_logs(app, hook_a, 1)
    assert editor.get(f"/forms/{form_uid}/hooks/{hook_b}/logs/{uid}").status_code == 404


def test_the_logs_query_reads_the_index(app, make, ctx):
    """On SQLite the plan is checked directly; PostgreSQL is measured by scripts/bench_admin.py."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite; PostgreSQL's depend on table statistics")
    form_uid, _ = make.form()
    hook_uid = make.hook(form_uid)
    hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
    for filters in (LogFilters(), LogFilters(status="failed")):
        stmt = filtered(hook, filters).order_by(
            DeliveryLog.date_created.desc(), DeliveryLog.id.desc()
        )
        compiled = stmt.limit(51).compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(
            row[-1] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
        assert "USING INDEX ix_delivery_logs_hook_" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of the whole hook's logs


def test_next_retry_and_paused_are_shown(app, editor, make):
    form_uid, _ = make.form()
    hook_uid = make.hook(form_uid)
    [uid] = add_logs(app, hook_uid, 1, status="pending")
    with app.app_context():
        entry = db.session.scalar(select(DeliveryLog).where(DeliveryLog.uid == uid))
        entry.next_retry_at = datetime.now(UTC) + timedelta(minutes=10)
        db.session.commit()
    html = editor.get(f"/forms/{form_uid}/hooks/{hook_uid}/logs").text
    assert "in 10 minutes" in html or "in 9 minutes" in html
