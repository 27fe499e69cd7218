"""Source settings: one set of rules for the panel's Source tab and the API.

`clean_source_settings()` checks API-named fields and returns (cleaned,
errors per field); `apply_source_settings()` writes cleaned values to a
Source, encrypting the password and deciding what the change means for the
poll: new server, project, form or `since` reads again from the start
(stored submissions are recognised and skipped), any change makes the next
poll due now, and a poll in progress loses its lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app

from webapp.models import SOURCE_KINDS, Source
from webapp.models.base import utcnow
from webapp.sources.guard import validate_endpoint_url

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
# What resets the cursors: where the submissions come from, and from when.
WHERE_FROM = ("url", "project_id", "xml_form_id", "since")

Errors = dict[str, list[str]]


def clean_source_settings(
    values: Mapping[str, Any], *, source: Source | None = None
) -> tuple[dict[str, Any], Errors]:
    """Check `values`; returns (cleaned, errors). Nothing is changed.

    With `source` (an update), absent fields keep their value, and an absent
    or empty password keeps the stored one. Output-only fields are ignored.
    """
    errors: Errors = {}
    cleaned: dict[str, Any] = {}

    def error(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field in sorted(set(values) - set(WRITABLE) - READ_ONLY):
        error(field, "Unknown field.")
    if source is None:
        for field in REQUIRED:
            if values.get(field) in (None, ""):
                error(field, "This field is required.")
    if errors:
        return {}, errors
    for field in WRITABLE:
        if field not in values:
            continue
        value = values[field]
        try:
            cleaned[field] = _CLEANERS[field](value)
        except ValueError as exc:
            error(field, str(exc))
    if "password" in cleaned and not cleaned["password"]:
        del cleaned["password"]  # write-only: empty keeps the stored one
    return ({}, errors) if errors else (cleaned, {})


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


def _kind(value: Any) -> str:
    if value not in SOURCE_KINDS:
        raise ValueError(f"Must be one of: {', '.join(SOURCE_KINDS)}.")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(
            "Enter the address of the Central server, e.g. https://central.example.org."
        )
    value = value.strip().rstrip("/")
    problems = validate_endpoint_url(
        value, allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"]
    )
    if problems:
        raise ValueError(
            " ".join(p.replace("hook's basic auth", "email and password") for p in problems)
        )
    return value


def _project_id(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("Must be a whole number (the project's id in Central).")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("Must be a whole number (the project's id in Central).") from None
    if number < 1 or str(number) != str(value).strip():
        raise ValueError("Must be a whole number (the project's id in Central).")
    return number


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Enter {what}.")
    value = value.strip()
    if len(value) > MAX_TEXT or not value.isprintable():
        raise ValueError(f"At most {MAX_TEXT} printable characters.")
    return value


def _email(value: Any) -> str:
    value = _text(value, "the email of the Central user")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or " " in value:
        raise ValueError("Enter the email the Central user logs in with.")
    return value


def _password(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 1024 or "\x00" in value:
        raise ValueError("The password must be text of at most 1024 characters.")
    return value


def _since(value: Any) -> datetime | None:
    """An ISO 8601 date (its midnight UTC) or date-time (UTC when no offset); null: none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("Must be an ISO 8601 date or date-time, or null.")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or date-time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > utcnow():
        raise ValueError("Must not be in the future.")
    return moment


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Must be true or false.")
    return value


_CLEANERS = {
    "kind": _kind,
    "url": _url,
    "project_id": _project_id,
    "xml_form_id": lambda v: _text(v, "the form id (xmlFormId) in Central"),
    "email": _email,
    "password": _password,
    "since": _since,
    "active": _bool,
    "send_backfill": _bool,
}
