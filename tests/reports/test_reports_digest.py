"""What a digest says, without database or mail: recipients, grouping, excerpts, hints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webapp.reports.digest import (
    MAX_ROWS_PER_HOOK,
    Failure,
    build_digests,
    excerpt,
    hint_keys,
    recipients,
)
from webapp.reports.i18n import gettext, ngettext

BASE = "https://fh.example.org"


def failure(log_id: int, **fields) -> Failure:
    values = dict(
        log_id=log_id,
        log_uid=f"hl{log_id}",
        instance_id=f"uuid:{log_id}",
        status_code=500,
        message="HTTP 500: boom",
        failed_at=datetime(2026, 11, 28, 13, log_id % 60, tzinfo=UTC),
        hook_uid="hA",
        hook_name="CRM",
        notification_emails=(),
        form_uid="aF",
        form_name="Survey",
        owner_email="alice@example.org",
        owner_wants_reports=True,
    )
    values.update(fields)
    return Failure(**values)


def test_recipients_owner_when_opted_in_then_extra_addresses_without_duplicates():
    extra = (" Bob@Example.org ", "alice@example.org", "", "carol@example.org")
    assert recipients(failure(1, notification_emails=extra)) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert recipients(failure(1, owner_wants_reports=False, notification_emails=extra)) == [
        "bob@example.org",
        "alice@example.org",
        "carol@example.org",
    ]
    assert recipients(failure(1, owner_wants_reports=False)) == []


def test_one_digest_per_recipient_grouped_by_form_then_hook():
    items = [
        failure(1, form_uid="aZ", form_name="Water points", hook_uid="h1", hook_name="CRM"),
        failure(2, form_uid="aA", form_name="household", hook_uid="h2", hook_name="Zeta"),
        failure(3, form_uid="aA", form_name="household", hook_uid="h3", hook_name="alpha"),
        failure(4, form_uid="aA", form_name="household", hook_uid="h2", hook_name="Zeta"),
        failure(5, owner_wants_reports=False, notification_emails=("ops@example.org",)),
        failure(6, owner_wants_reports=False),
    ]
    digests, unaddressed = build_digests(items, BASE)
    assert unaddressed == {6}
    assert [d.recipient for d in digests] == ["alice@example.org", "ops@example.org"]
    alice, ops = digests
    assert alice.log_ids == {1, 2, 3, 4} and alice.failures == 4
    assert [f.name for f in alice.forms] == ["household", "Water points"]
    assert [h.name for h in alice.forms[0].hooks] == ["alpha", "Zeta"]
    zeta = alice.forms[0].hooks[1]
    assert [r.instance_id for r in zeta.rows] == ["uuid:4", "uuid:2"]  # newest first
    assert zeta.logs_url == f"{BASE}/forms/aA/hooks/h2/logs"
    assert zeta.rows[0].url == f"{BASE}/forms/aA/hooks/h2/logs/hl4"
    assert zeta.rows[0].failed_at_text == "2026-11-28 13:04 UTC"
    assert ops.log_ids == {5}


def test_a_long_list_is_cut_and_counted():
    items = [failure(i) for i in range(1, MAX_ROWS_PER_HOOK + 8)]
    [digest], _ = build_digests(items, BASE)
    [hook] = digest.forms[0].hooks
    assert hook.total == MAX_ROWS_PER_HOOK + 7
    assert len(hook.rows) == MAX_ROWS_PER_HOOK and hook.more == 7
    assert digest.failures == MAX_ROWS_PER_HOOK + 7


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("HTTP 500: plain   text\n\twith\r\nbreaks", "HTTP 500: plain text with breaks"),
        (
            "HTTP 502: <html><head><title>502 Bad Gateway</title><style>p{color:red}</style>"
            "<script>alert(1)</script></head><body><h1>Bad&nbsp;Gateway</h1>"
            "<p>nginx &amp; co</p></body></html>",
            "HTTP 502: 502 Bad Gateway Bad Gateway nginx & co",
        ),
        ("", ""),
    ],
)
def test_excerpt_strips_html_and_collapses_whitespace(message, expected):
    assert excerpt(message) == expected


def test_excerpt_is_short():
    text = excerpt("HTTP 500: " + "word " * 200)
    assert len(text) <= 200 and text.endswith("…") and "  " not in text


@pytest.mark.parametrize(
    ("code", "message", "key"),
    [
        (401, "HTTP 401: Unauthorized", "credentials"),
        (403, "HTTP 403: Forbidden", "credentials"),
        (404, "HTTP 404: Not Found", "not_found"),
        (500, "HTTP 500: oops", "server_error"),
        (503, "HTTP 503: busy", "server_error"),
        (301, "HTTP 301: moved", "redirect"),
        (422, "HTTP 422: bad field", "rejected"),
        (None, "Connection refused by crm.example.org:443.", "unreachable"),
        (None, "Timed out after 30 s waiting for crm.example.org to answer.", "unreachable"),
        (
            None,
            "Refused: crm.local resolves to 10.0.0.5, private; Formhooks does not send to "
            "internal addresses (see SSRF_ALLOWED_NETWORKS).",
            "internal",
        ),
        (None, "Could not resolve host nowhere.invalid: Name or service not known.", "dns"),
        (None, "TLS error: certificate verify failed (expired) for x.", "tls"),
        (None, "Something else", None),
    ],
)
def test_hints_from_status_codes_and_messages(code, message, key):
    assert hint_keys([(code, message)]) == ([key] if key else [])


def test_hints_of_a_hook_are_distinct_and_ordered():
    outcomes = [(500, "x"), (401, "y"), (None, "Connection refused by h:1."), (500, "z")]
    assert hint_keys(outcomes) == ["credentials", "server_error", "unreachable"]


def test_translation_helpers_fall_back_to_english_without_an_app():
    assert gettext("%(n)s forms", n=2) == "2 forms"
    assert ngettext("%(num)d form", "%(num)d forms", 1) == "1 form"
    assert ngettext("%(num)d form in %(x)s", "%(num)d forms in %(x)s", 3, x="y") == "3 forms in y"
