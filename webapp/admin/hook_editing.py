"""Between the hook page's HTML form and `webapp.hook_settings`.

`posted_values()` turns the posted form into the KoboToolbox-named values
that `clean_hook_settings()` checks (the same function the API uses), and
`route_errors()` places its problems next to the fields of the page, in the
reader's language (by problem code and field: nothing parses sentences). Only the
shape of the page's own widgets is checked here (a header value without a
name, a header given twice); every setting rule lives in hook_settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _

from webapp.admin.i18n import translate
from webapp.admin.webforms import BLANK_HEADER_ROWS, HookForm
from webapp.models import Hook
from webapp.validation import Problem

Errors = dict[str, list[str]]
#: Where the problems of `clean_hook_settings()` are shown: form field names, plus
#: "headers" (the custom headers table) and "auth" (username and password).
_DIRECT = {
    "name",
    "endpoint",
    "active",
    "export_type",
    "auth_level",
    "subset_fields",
    "payload_template",
    "send_edits",
    "email_notification",
    "notification_emails",
}


def lines(text: str | None) -> list[str]:
    """Non-blank lines (commas also separate), stripped, in order."""
    items = []
    for line in (text or "").replace(",", "\n").splitlines():
        if line.strip():
            items.append(line.strip())
    return items


def subset_lines(text: str | None) -> list[str]:
    """One tag per non-blank line, stripped (commas are not separators in paths)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def fill_form(webform: HookForm, hook: Hook) -> None:
    """Show `hook` in the form: secrets are never put back in the page."""
    webform.name.data = hook.name
    webform.endpoint.data = hook.endpoint
    webform.active.data = hook.active
    webform.export_type.data = hook.export_type
    webform.auth_level.data = hook.auth_level
    webform.username.data = hook.username
    webform.subset_fields.data = "\n".join(hook.subset_fields or [])
    webform.payload_template.data = hook.payload_template or ""
    webform.send_edits.data = hook.send_edits
    webform.email_notification.data = hook.email_notification
    webform.notification_emails.data = "\n".join(hook.notification_emails or [])
    for name in hook.custom_headers:
        webform.custom_headers.append_entry({"name": name, "value": "", "original": name})


def add_blank_header_rows(webform: HookForm) -> None:
    """A few empty rows, so headers can be added without JavaScript."""
    blanks = sum(
        1 for row in webform.custom_headers if not row.form.name.data and not row.form.value.data
    )
    for _i in range(max(0, BLANK_HEADER_ROWS - blanks)):
        webform.custom_headers.append_entry({"name": "", "value": "", "original": ""})


def posted_values(webform: HookForm, hook: Hook | None) -> tuple[dict[str, Any], Errors]:
    """The values for clean_hook_settings(), and errors in the page's own widgets."""
    headers, header_errors = _posted_headers(webform, hook)
    settings: dict[str, Any] = {
        "username": (webform.username.data or "").strip(),
        "custom_headers": headers,
    }
    if webform.password.data:
        settings["password"] = webform.password.data
    values = {
        "name": webform.name.data or "",
        "endpoint": (webform.endpoint.data or "").strip(),
        "active": bool(webform.active.data),
        "export_type": webform.export_type.data,
        "auth_level": webform.auth_level.data,
        "settings": settings,
        "subset_fields": subset_lines(webform.subset_fields.data),
        "payload_template": webform.payload_template.data or None,
        "send_edits": bool(webform.send_edits.data),
        "email_notification": bool(webform.email_notification.data),
        "notification_emails": lines(webform.notification_emails.data),
    }
    return values, ({"headers": header_errors} if header_errors else {})


def kept_headers(webform: HookForm, hook: Hook | None) -> set[str]:
    """Names of the posted headers whose value is the stored one (left blank), not typed anew.

    clean_hook_settings() drops those values when the endpoint moves to another origin.
    """
    stored = hook.custom_headers if hook is not None else {}
    return {
        (row.form.name.data or "").strip()
        for row in webform.custom_headers
        if not row.form.value.data and (row.form.original.data or "") in stored
    }


def _posted_headers(webform: HookForm, hook: Hook | None) -> tuple[dict[str, str], list[str]]:
    stored = hook.custom_headers if hook is not None else {}
    headers: dict[str, str] = {}
    seen: set[str] = set()
    errors: list[str] = []
    for row in webform.custom_headers:
        name = (row.form.name.data or "").strip()
        value = row.form.value.data or ""
        original = row.form.original.data or ""
        if not name:
            if value:
                errors.append(_("A header value was given without its name."))
            continue
        if name.lower() in seen:
            errors.append(_("The header %(name)s is given twice.", name=name))
            continue
        seen.add(name.lower())
        if not value and original in stored:
            value = stored[original]  # blank keeps the saved (never displayed) value
        headers[name] = value
    return headers, errors


def route_errors(problems: Iterable[Problem]) -> Errors:
    """Place clean_hook_settings() problems on the page, translated: {slot: [messages]}."""
    routed: Errors = {}
    for problem in problems:
        if problem.field in _DIRECT:
            slot = problem.field
        elif problem.field == "settings":
            slot = "headers" if problem.part == "custom_headers" else "auth"
        else:
            slot = "form"
        routed.setdefault(slot, []).append(translate(problem))
    return routed
