"""Source settings: one set of rules for the panel's Source tab and the API.

`clean_source_settings()` checks API-named fields and returns (cleaned,
problems); `apply_source_settings()` writes cleaned values to a
Source, encrypting the password and deciding what the change means for the
poll: new server, project, form or `since` reads again from the start
(stored submissions are recognised and skipped), any change makes the next
poll due now, and a poll in progress loses its lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import current_app

from webapp.extensions import db
from webapp.models import SOURCE_KINDS, Form, Source
from webapp.models.base import utcnow
from webapp.sources.guard import endpoint_problems
from webapp.validation import Problem, iso_moment

WRITABLE = (
    "kind",
    "url",
    "project_id",
    "xml_form_id",
    "email",
    "password",
    "since",
    "active",
    "send_backfill",
)
READ_ONLY = frozenset(
    {
        "uid",
        "status",
        "last_polled_at",
        "last_error",
        "error_code",
        "received_count",
        "connected_at",
        "next_poll_at",
    }
)
REQUIRED = ("url", "project_id", "xml_form_id", "email", "password")
MAX_TEXT = 255
MAX_PASSWORD = 1024
# What resets the cursors: where the submissions come from, and from when.
WHERE_FROM = ("url", "project_id", "xml_form_id", "since")


class Invalid(ValueError):
    """A value a cleaner refuses: the problem codes, with their parameters."""

    def __init__(self, *problems: tuple[str, dict[str, Any]]) -> None:
        super().__init__(problems)
        self.problems = problems


def clean_source_settings(
    values: Mapping[str, Any], *, source: Source | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Check `values`; returns (cleaned, problems). Nothing is changed.

    With `source` (an update), absent fields keep their value, and an absent
    or empty password keeps the stored one. Output-only fields are ignored.
    Problems are values (webapp.validation): the API words them in English,
    the panel in the reader's language.
    """
    problems = [
        Problem(field, "field.unknown") for field in sorted(set(values) - set(WRITABLE) - READ_ONLY)
    ]
    if source is None:
        problems += [
            Problem(field, "field.required")
            for field in REQUIRED
            if values.get(field) in (None, "")
        ]
    if problems:
        return {}, problems
    cleaned: dict[str, Any] = {}
    for field in WRITABLE:
        if field not in values:
            continue
        try:
            cleaned[field] = _CLEANERS[field](values[field])
        except Invalid as exc:
            problems += [Problem(field, code, params) for code, params in exc.problems]
    if "password" in cleaned and not cleaned["password"]:
        del cleaned["password"]  # write-only: empty keeps the stored one
    return ({}, problems) if problems else (cleaned, [])


def save_source(form: Form, cleaned: Mapping[str, Any]) -> tuple[Source, bool]:
    """Connect `form` to a source with `cleaned` values, or change its source.

    Returns (the source, whether it was created); the caller commits. The
    one way the API, the panel, the tests and the bench connect a form.
    """
    source = form.source
    created = source is None
    if source is None:
        source = Source(form=form)
        db.session.add(source)
    apply_source_settings(source, cleaned)
    return source, created


def apply_source_settings(source: Source, cleaned: Mapping[str, Any]) -> None:
    """Write cleaned values; reset cursors and the lease as the change requires."""
    moved = any(
        field in cleaned and cleaned[field] != getattr(source, field) for field in WHERE_FROM
    )
    for field, value in cleaned.items():
        setattr(source, field, value)
    if source.connected_at is None:
        source.connected_at = utcnow()
    if moved or source.created_cursor is None:
        source.reset_cursors()
    source.next_poll_at = utcnow()
    source.failures = 0
    source.lease_owner = None  # a poll in progress stops at its next write
    source.leased_until = None


_SOURCE_WORDING = {"url.required": "source.url.not_text", "url.userinfo": "source.url.userinfo"}


def _kind(value: Any) -> str:
    if value not in SOURCE_KINDS:
        raise Invalid(("source.kind.choice", {"choices": ", ".join(SOURCE_KINDS)}))
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(("source.url.not_text", {}))
    value = value.strip().rstrip("/")
    problems = endpoint_problems(
        value, allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"]
    )
    if problems:
        # The hooks' rules, worded for a Central server and its email and password.
        raise Invalid(*((_SOURCE_WORDING.get(p.code, p.code), dict(p.params)) for p in problems))
    return value


def _project_id(value: Any) -> int:
    invalid = Invalid(("source.project_id.invalid", {}))
    if isinstance(value, bool):
        raise invalid
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid from None
    if number < 1 or str(number) != str(value).strip():
        raise invalid
    return number


def _text(value: Any, required: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid((required, {}))
    value = value.strip()
    if len(value) > MAX_TEXT or not value.isprintable():
        raise Invalid(("text.too_long", {"most": MAX_TEXT}))
    return value


def _email(value: Any) -> str:
    value = _text(value, "source.email.required")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or " " in value:
        raise Invalid(("source.email.invalid", {}))
    return value


def _password(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > MAX_PASSWORD or "\x00" in value:
        raise Invalid(("password.too_long", {"most": MAX_PASSWORD}))
    return value


def _since(value: Any) -> datetime | None:
    """An ISO 8601 date (its midnight UTC) or date-time (UTC when no offset); null: none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(("moment.not_text", {}))
    try:
        moment = iso_moment(value)
    except ValueError:
        raise Invalid(("moment.invalid", {"value": value})) from None
    if moment > utcnow():
        raise Invalid(("moment.future", {}))
    return moment


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(("value.not_bool", {}))
    return value


_CLEANERS = {
    "kind": _kind,
    "url": _url,
    "project_id": _project_id,
    "xml_form_id": lambda v: _text(v, "source.xml_form_id.required"),
    "email": _email,
    "password": _password,
    "since": _since,
    "active": _bool,
    "send_backfill": _bool,
}
