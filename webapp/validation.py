"""Validation problems as values: what is wrong, where, and with which figures.

A validator (the hook settings, the endpoint URL, subsets, the wrapper)
returns :class:`Problem` values, never sentences. Words are made at the edge:
the JSON API writes each problem in English with :meth:`Problem.message`
(grouped by :func:`english_errors` into ``{field: [messages]}``), and the
panel looks the same template up with gettext, in the reader's language
(``webapp.admin.hook_editing``). :data:`MESSAGES` is the one catalogue of
codes (:data:`PANEL` words a few differently for the panel); every template
is marked with :func:`N_` so ``pybabel extract -k N_`` puts it in the
translation catalogue (README, "Translations").

This module imports nothing from Flask, so pure modules (``delivery.subset``,
``delivery.wrapper``) can use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any


def N_(text: str) -> str:  # noqa: N802 - the usual name of gettext's no-op marker
    """Mark `text` for extraction (`pybabel extract -k N_`); it is translated later."""
    return text


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a value.

    `field` is the top-level setting the API reports it under ("endpoint",
    "settings", or an unknown name the client sent); `part` narrows it inside
    that setting ("custom_headers", "username", "password") so the panel can
    show it next to the right widget. `code` is a key of :data:`MESSAGES`;
    `params` fill its ``%(name)s`` placeholders.
    """

    field: str
    code: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    part: str = ""

    def __post_init__(self) -> None:
        if self.code not in MESSAGES:
            raise KeyError(f"Unknown problem code {self.code!r}.")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def template(self) -> str:
        """The English template of `code` (also the gettext msgid)."""
        return MESSAGES[self.code]

    @property
    def panel_template(self) -> str:
        """The panel's English template (the gettext msgid): :data:`PANEL` or `template`."""
        return PANEL.get(self.code, MESSAGES[self.code])

    def message(self) -> str:
        """The problem in English, as the API says it."""
        return self.template % dict(self.params)


def english_errors(problems: Iterable[Problem]) -> dict[str, list[str]]:
    """``{field: [English messages]}`` in the order found: the API's "errors"."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.field, []).append(problem.message())
    return errors


def iso_moment(text: str, *, end: bool = False) -> datetime:
    """An ISO 8601 date or date-time, as an aware UTC datetime; ValueError otherwise.

    A date-time without an offset is UTC. A date alone is its midnight UTC;
    as an `end` (the "until" of a range), the following midnight, so the day
    is included. Every date the API and the panel take goes through this.
    """
    text = text.strip()
    if text.endswith("z"):  # RFC 3339 allows a lower-case Z
        text = text[:-1] + "Z"
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except OverflowError:  # the day after 9999-12-31, or an offset past year 9999
        raise ValueError(f"{text!r} is out of range") from None


#: code -> English template. Placeholders are ``%(name)s`` (or ``%(name)r``
#: for a value shown quoted, as Python writes it). The placeholder string
#: %SUBMISSION% travels as a parameter so no template needs ``%%``.
MESSAGES: dict[str, str] = {
    # Any setting
    "field.unknown": N_("Unknown field."),
    "value.unstorable": N_("Contains a NUL character or invalid Unicode (a lone surrogate)."),
    "value.not_bool": N_("Must be true or false."),
    "value.not_text": N_("Must be text."),
    # name, export_type, auth_level
    "name.required": N_("Enter a name."),
    "name.too_long": N_("At most %(most)s characters."),
    "export_type.choice": N_("Choose json or xml."),
    "auth_level.choice": N_("Choose no_auth or basic_auth."),
    # settings: basic auth and custom headers
    "settings.not_object": N_("Must be an object with username, password and custom_headers."),
    "settings.unknown": N_("Unknown setting %(key)r."),
    "basic_auth.incomplete": N_("Basic auth needs a username and a password."),
    "username.invalid": N_("The username must be text of at most 255 characters, without ':'."),
    "password.not_text": N_("The password must be text."),
    "password.new_origin": N_("The endpoint is on another host: enter the password again."),
    "headers.not_object": N_("custom_headers must be an object of header names to values."),
    "headers.too_many": N_("At most %(most)s custom headers."),
    "header.name_invalid": N_(
        "Header name %(name)r is not valid (letters, digits and - only; no spaces, colons or "
        "line breaks)."
    ),
    "header.reserved": N_("Header %(name)r is set by Formhooks and cannot be changed."),
    "header.value_not_text": N_("The value of header %(name)r must be text."),
    "header.value_control": N_(
        "The value of header %(name)r must not contain line breaks or control characters."
    ),
    "header.value_too_long": N_("The value of header %(name)r is too long."),
    # notification_emails
    "emails.not_list": N_("Must be a list of email addresses."),
    "emails.too_many": N_("At most %(most)s addresses."),
    "email.invalid": N_("%(email)r: %(detail)s"),
    # endpoint
    "url.required": N_("Enter the endpoint URL, e.g. https://example.org/hook."),
    "url.too_long": N_("The URL is too long (at most %(most)s characters)."),
    "url.whitespace": N_("The URL must not contain spaces or control characters."),
    "url.unparsable": N_("The URL is not valid (check the brackets around an IPv6 address)."),
    "url.no_scheme": N_("The URL must start with http:// or https://."),
    "url.scheme": N_("Only http:// and https:// URLs are supported, not %(scheme)s://."),
    "url.userinfo": N_(
        "Do not put a user name or password in the URL; use the hook's basic auth fields instead."
    ),
    "url.no_host": N_("The URL needs a host name, e.g. https://example.org/hook."),
    "url.port": N_("The port must be a number between 1 and 65535."),
    "url.bad_ipv6": N_("%(host)r is not a valid IPv6 address."),
    "url.bad_host": N_("The host name %(host)r is not valid."),
    "url.internal": N_(
        "%(ip)s is %(reason)s; Formhooks does not send to internal addresses "
        "(see SSRF_ALLOWED_NETWORKS)."
    ),
    "url.internal_spelling": N_(
        "%(host)s is another way of writing %(ip)s, %(reason)s; Formhooks does not send to "
        "internal addresses (see SSRF_ALLOWED_NETWORKS)."
    ),
    # subset_fields: "one" names one tag, "many" several, "more" several and a count
    "subset.not_list": N_("Subset fields must be a list of strings."),
    "subset.too_many": N_("At most %(most)s subset fields are allowed (%(count)s given)."),
    "subset.type.one": N_("Subset field %(tags)s must be a string."),
    "subset.type.many": N_("Subset fields %(tags)s must be strings."),
    "subset.type.more": N_("Subset fields %(tags)s and %(more)s more must be strings."),
    "subset.empty.one": N_("Subset field %(tags)s is empty."),
    "subset.empty.many": N_("Subset fields %(tags)s are empty."),
    "subset.empty.more": N_("Subset fields %(tags)s and %(more)s more are empty."),
    "subset.space.one": N_("Subset field %(tags)s must not contain whitespace."),
    "subset.space.many": N_("Subset fields %(tags)s must not contain whitespace."),
    "subset.space.more": N_(
        "Subset fields %(tags)s and %(more)s more must not contain whitespace."
    ),
    "subset.slash.one": N_("Subset field %(tags)s must not start or end with '/'."),
    "subset.slash.many": N_("Subset fields %(tags)s must not start or end with '/'."),
    "subset.slash.more": N_(
        "Subset fields %(tags)s and %(more)s more must not start or end with '/'."
    ),
    "subset.double.one": N_("Subset field %(tags)s must not contain '//'."),
    "subset.double.many": N_("Subset fields %(tags)s must not contain '//'."),
    "subset.double.more": N_("Subset fields %(tags)s and %(more)s more must not contain '//'."),
    "subset.long.one": N_("Subset field %(tags)s is too long (at most %(most)s characters)."),
    "subset.long.many": N_("Subset fields %(tags)s are too long (at most %(most)s characters)."),
    "subset.long.more": N_(
        "Subset fields %(tags)s and %(more)s more are too long (at most %(most)s characters)."
    ),
    # A backfill's or replay's request (webapp.bulk.ranges)
    "range.reversed": N_("Must not be before since."),
    "since.future": N_("Must not be in the future (until is now when not given)."),
    "statuses.choice": N_('Choose "failed", "success", or a list of both.'),
    "hook.disabled": N_("The REST service is disabled: enable it first."),
    "bulk.not_running": N_("Only a running send can be cancelled; this one is %(state)s."),
    # payload_template (the custom wrapper)
    "wrapper.not_text": N_("The custom wrapper must be a string."),
    "wrapper.json_only": N_("A custom wrapper can only be used with the JSON format."),
    "wrapper.too_long": N_("The custom wrapper is too long (at most %(most)s characters)."),
    "wrapper.too_many_placeholders": N_(
        "The custom wrapper has %(count)s %(placeholder)s placeholders; at most %(most)s are "
        "allowed."
    ),
    "wrapper.invalid_json": N_(
        "The custom wrapper is not valid JSON (with {} in place of %(placeholder)s): "
        "%(detail)s at line %(line)s, column %(column)s."
    ),
    "wrapper.too_deep": N_("The custom wrapper is nested too deeply."),
    "wrapper.bad_number": N_("The custom wrapper is not valid JSON: %(detail)s"),
    "wrapper.quoted_placeholder": N_(
        "%(placeholder)s must stand for a JSON value, not be inside a JSON string: remove the "
        'quotes around it (e.g. {"data": %(placeholder)s}).'
    ),
    # Sources (ODK Central): url, project_id, xml_form_id, email, password, since
    "field.required": N_("This field is required."),
    "source.kind.choice": N_("Must be one of: %(choices)s."),
    "source.url.not_text": N_(
        "Enter the address of the Central server, e.g. https://central.example.org."
    ),
    "source.url.userinfo": N_(
        "Do not put a user name or password in the URL; use the email and password fields instead."
    ),
    "source.project_id.invalid": N_("Must be a whole number (the project's id in Central)."),
    "source.xml_form_id.required": N_("Enter the form id (xmlFormId) in Central."),
    "source.email.required": N_("Enter the email of the Central user."),
    "source.email.invalid": N_("Enter the email the Central user logs in with."),
    "text.too_long": N_("At most %(most)s printable characters."),
    "password.too_long": N_("The password must be text of at most %(most)s characters."),
    "moment.invalid": N_("%(value)r is not an ISO 8601 date or date-time."),
    "moment.not_text": N_("Must be an ISO 8601 date or date-time, or null."),
    "moment.future": N_("Must not be in the future."),
}


#: code -> the panel's wording where it differs from the API's: the panel
#: names the "Fields to send" box, not the API's ``subset_fields``, and says
#: why an address is refused in a sentence of its own.
PANEL: dict[str, str] = {
    "url.internal": N_(
        "%(ip)s is an internal address (%(reason)s): Formhooks does not send to internal "
        "addresses (see SSRF_ALLOWED_NETWORKS)."
    ),
    "url.internal_spelling": N_(
        "%(host)s is another way of writing %(ip)s, an internal address (%(reason)s): "
        "Formhooks does not send to internal addresses (see SSRF_ALLOWED_NETWORKS)."
    ),
    "header.name_invalid": N_(
        "The header name %(name)r is not valid (letters, digits and - only; no spaces, "
        "colons or line breaks)."
    ),
    "header.reserved": N_("The header %(name)r is set by Formhooks and cannot be changed."),
    "subset.too_many": N_("At most %(most)s fields can be chosen (%(count)s given)."),
    "subset.space.one": N_("The field %(tags)s must not contain spaces."),
    "subset.space.many": N_("The fields %(tags)s must not contain spaces."),
    "subset.space.more": N_("The fields %(tags)s and %(more)s more must not contain spaces."),
    "subset.slash.one": N_("The field %(tags)s must not start or end with “/”."),
    "subset.slash.many": N_("The fields %(tags)s must not start or end with “/”."),
    "subset.slash.more": N_(
        "The fields %(tags)s and %(more)s more must not start or end with “/”."
    ),
    "subset.double.one": N_("The field %(tags)s must not contain “//”."),
    "subset.double.many": N_("The fields %(tags)s must not contain “//”."),
    "subset.double.more": N_("The fields %(tags)s and %(more)s more must not contain “//”."),
}
