"""Hook settings: one set of rules for the admin panel's forms and the API.

`clean_hook_settings()` takes KoboToolbox-named fields (as the API receives
them, and as the admin forms produce them), checks every one, and returns
either cleaned values or problems (`webapp.validation.Problem`: field, code,
parameters; the API words them in English, the panel in the reader's
language). `apply_hook_settings()` writes cleaned values to a Hook,
encrypting secrets. Nothing is changed when there are problems.

Stored secrets never follow the endpoint to another origin (scheme, host,
port): see `_secrets_for_new_origin()`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app

from webapp.delivery.addresses import endpoint_problems
from webapp.delivery.headers import RESERVED as _RESERVED_HEADERS
from webapp.delivery.subset import validate_subset_fields
from webapp.delivery.wrapper import validate_payload_template
from webapp.models import AUTH_LEVELS, EXPORT_TYPES, Hook
from webapp.validation import Problem

FIELDS = (
    "name",
    "endpoint",
    "active",
    "export_type",
    "auth_level",
    "settings",
    "subset_fields",
    "payload_template",
    "send_edits",
    "email_notification",
    "notification_emails",
)
MAX_NAME = 255
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096
MAX_EMAILS = 20
# RFC 7230 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}\Z")

#: Key of `cleaned` listing the header names whose stored values were dropped
#: because the endpoint moved to another origin (not a Hook field: not applied).
CLEARED = "cleared_headers"


def clean_hook_settings(
    values: Mapping[str, Any],
    *,
    hook: Hook | None = None,
    kept_headers: Collection[str] = (),
) -> tuple[dict[str, Any], list[Problem]]:
    """Check `values`; returns (cleaned, problems), cleaned being {} if any.

    With `hook` (an update), absent fields keep the hook's value; without it
    (a creation), `name` and `endpoint` are required. `settings.password`
    that is absent or empty keeps the stored password. `kept_headers` names
    the headers of `settings.custom_headers` whose values the caller copied
    from the stored ones (a blank field, a mask sent back), not typed anew.
    """
    errors: list[Problem] = []
    cleaned: dict[str, Any] = {}

    def error(field: str, code: str, part: str = "", **params: Any) -> None:
        errors.append(Problem(field, code, params, part))

    unknown = sorted(set(values) - set(FIELDS) - {"uid"})
    for field in unknown:
        error(field, "field.unknown")
    for field, value in values.items():
        if _unstorable(value):
            error(field, "value.unstorable")
    if errors:
        return {}, errors

    def current(field: str, default: Any) -> Any:
        if field in values:
            return values[field]
        return getattr(hook, field) if hook is not None else default

    if "name" in values or hook is None:
        name = values.get("name")
        if not isinstance(name, str) or not name.strip():
            error("name", "name.required")
        elif len(name.strip()) > MAX_NAME:
            error("name", "name.too_long", most=MAX_NAME)
        else:
            cleaned["name"] = name.strip()

    if "endpoint" in values or hook is None:
        endpoint = values.get("endpoint")
        endpoint = endpoint.strip() if isinstance(endpoint, str) else endpoint
        # A host written as an internal IP address is refused now, not at send time.
        problems = endpoint_problems(
            endpoint, allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"]
        )
        if problems:
            errors.extend(problems)
        else:
            cleaned["endpoint"] = endpoint

    for field in ("active", "send_edits", "email_notification"):
        if field in values:
            if isinstance(values[field], bool):
                cleaned[field] = values[field]
            else:
                error(field, "value.not_bool")

    export_type = current("export_type", "json")
    if export_type not in EXPORT_TYPES:
        error("export_type", "export_type.choice")
    elif "export_type" in values:
        cleaned["export_type"] = export_type

    auth_level = current("auth_level", "no_auth")
    if auth_level not in AUTH_LEVELS:
        error("auth_level", "auth_level.choice")
    elif "auth_level" in values:
        cleaned["auth_level"] = auth_level

    if "settings" in values:
        _clean_settings(values["settings"], auth_level, hook, cleaned, error)
    elif auth_level == "basic_auth" and not (hook and hook.username and hook.password_encrypted):
        error("settings", "basic_auth.incomplete", "username")

    if "subset_fields" in values:
        tags = values["subset_fields"]
        problems = validate_subset_fields(tags)
        if problems:
            errors.extend(problems)
        else:
            cleaned["subset_fields"] = list(dict.fromkeys(tags))

    template = current("payload_template", None)
    if template is not None and not isinstance(template, str):
        error("payload_template", "value.not_text")
    elif "payload_template" in values or "export_type" in values:
        template = template if template and template.strip() else None
        problems = validate_payload_template(template, export_type)
        if problems:
            errors.extend(problems)
        elif "payload_template" in values:
            cleaned["payload_template"] = template

    if "notification_emails" in values:
        _clean_emails(values["notification_emails"], cleaned, error)

    if hook is not None and "endpoint" in cleaned and not errors:
        _secrets_for_new_origin(hook, auth_level, kept_headers, cleaned, error)

    return ({} if errors else cleaned), errors


def same_origin(first: str, second: str) -> bool:
    """Whether two http(s) URLs have the same scheme, host and port (default ports filled in)."""
    a, b = urlsplit(first), urlsplit(second)
    default = {"http": 80, "https": 443}
    return (a.scheme.lower(), a.hostname, a.port or default.get(a.scheme.lower())) == (
        b.scheme.lower(),
        b.hostname,
        b.port or default.get(b.scheme.lower()),
    )


def _secrets_for_new_origin(hook, auth_level, kept_headers, cleaned, error) -> None:
    """When the endpoint moves to another origin, stored secrets must be typed again.

    Else whoever may edit a hook could send its password and header values
    to a host of their choosing. Basic auth needs the password in the same
    change (an error otherwise); header values not typed anew are dropped
    and listed under CLEARED; an unused stored password is deleted.
    """
    if same_origin(hook.endpoint, cleaned["endpoint"]):
        return
    if not cleaned.get("password"):
        if auth_level == "basic_auth":
            error("settings", "password.new_origin", "password")
            return
        if hook.password_encrypted:
            cleaned["password"] = ""
    if "custom_headers" in cleaned:
        headers, kept = cleaned["custom_headers"], set(kept_headers)
    else:
        headers = hook.custom_headers
        kept = set(headers)
    cleared = [name for name in headers if name in kept]
    if cleared:
        cleaned["custom_headers"] = {n: v for n, v in headers.items() if n not in kept}
        cleaned[CLEARED] = cleared


def _clean_settings(settings, auth_level, hook, cleaned, error) -> None:
    if not isinstance(settings, Mapping):
        error("settings", "settings.not_object")
        return
    for key in sorted(set(settings) - {"username", "password", "custom_headers"}):
        error("settings", "settings.unknown", key=key)
    username = settings.get("username", hook.username if hook else "")
    password = settings.get("password")
    if not isinstance(username, str) or len(username) > 255 or ":" in username:
        error("settings", "username.invalid", "username")
    elif "username" in settings:
        cleaned["username"] = username
    if password is not None and not isinstance(password, str):
        error("settings", "password.not_text", "password")
    elif password:
        cleaned["password"] = password
    has_password = bool(password) or bool(hook and hook.password_encrypted)
    if auth_level == "basic_auth" and (not username or not has_password):
        error("settings", "basic_auth.incomplete", "username" if not username else "password")
    if "custom_headers" in settings:
        headers = settings["custom_headers"]
        problems = header_problems(headers)
        for problem in problems:
            error(problem.field, problem.code, problem.part, **problem.params)
        if not problems:
            cleaned["custom_headers"] = dict(headers)


def header_problems(headers: Any) -> list[Problem]:
    """Problems of custom headers (field "settings", part "custom_headers"); [] when usable."""

    def problem(code: str, **params: Any) -> Problem:
        return Problem("settings", code, params, "custom_headers")

    if not isinstance(headers, Mapping):
        return [problem("headers.not_object")]
    if len(headers) > MAX_HEADERS:
        return [problem("headers.too_many", most=MAX_HEADERS)]
    problems = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            problems.append(problem("header.name_invalid", name=name))
        elif name.lower() in _RESERVED_HEADERS:
            problems.append(problem("header.reserved", name=name))
        if not isinstance(value, str):
            problems.append(problem("header.value_not_text", name=name))
        elif any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
            problems.append(problem("header.value_control", name=name))
        elif len(value) > MAX_HEADER_VALUE:
            problems.append(problem("header.value_too_long", name=name))
    return problems


def _unstorable(value: Any) -> bool:
    """NUL or a lone surrogate anywhere in `value`: no database or cipher takes it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _clean_emails(emails, cleaned, error) -> None:
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        error("notification_emails", "emails.not_list")
        return
    if len(emails) > MAX_EMAILS:
        error("notification_emails", "emails.too_many", most=MAX_EMAILS)
        return
    normalized, valid = [], True
    for email in emails:
        try:
            normalized.append(validate_email(email.strip(), check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            error("notification_emails", "email.invalid", email=email, detail=str(exc))
            valid = False
    if valid:
        cleaned["notification_emails"] = list(dict.fromkeys(normalized))


def apply_hook_settings(hook: Hook, cleaned: Mapping[str, Any]) -> None:
    """Write cleaned values (from clean_hook_settings) to `hook`."""
    for field, value in cleaned.items():
        if field == CLEARED:
            continue
        if field == "password":
            hook.password = value
        elif field == "custom_headers":
            hook.custom_headers = value
        else:
            setattr(hook, field, value)
    if hook.auth_level == "no_auth" and "auth_level" in cleaned:
        hook.password = ""  # keep no secret that is not used
