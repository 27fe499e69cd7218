"""English and French: Flask-Babel, the locale of each request, date filters.

The locale is, in order: the logged-in user's saved language, the language
chosen in the session before logging in, the browser's preference, English.
Times are stored in UTC and shown in UTC, formatted for the locale.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime

from flask import Flask, has_request_context, request, session
from flask_babel import (
    Babel,
    format_date,
    format_datetime,
    format_decimal,
    format_timedelta,
    gettext,
)
from flask_login import current_user
from markupsafe import Markup, escape

from webapp.models.base import utcnow
from webapp.validation import Problem

LANGUAGES: dict[str, str] = {"en": "English", "fr": "Français"}
DEFAULT_LANGUAGE = "en"
SESSION_KEY = "language"

babel = Babel()


def init_i18n(app: Flask) -> None:
    """Bind Flask-Babel to `app` and add the date filters to Jinja."""
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = os.path.join(app.root_path, "translations")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.filters["datetime"] = datetime_html
    app.jinja_env.filters["ago"] = relative_html
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["number"] = format_decimal
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES


def select_locale() -> str:
    """The language of the current request (see the module docstring)."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    user = current_user
    if user and user.is_authenticated and user.language in LANGUAGES:
        return user.language
    chosen = session.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def datetime_html(value: datetime | None, format: str = "medium") -> Markup:
    """`<time>` showing an aware UTC datetime in the user's language ("—" for None)."""
    if value is None:
        return Markup("—")
    iso = value.isoformat(timespec="seconds")
    text = format_datetime(value, format)
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(iso, text, text)


def relative_text(value: datetime) -> str:
    """ "5 minutes ago" / "in 5 minutes", in the user's language."""
    delta = value - utcnow()
    if abs(delta.total_seconds()) < 5:
        return gettext("just now")
    return format_timedelta(delta, granularity="second", add_direction=True)


def relative_html(value: datetime | None) -> Markup:
    """`<time>` with a relative text; the full date and time as its tooltip."""
    if value is None:
        return Markup("—")
    iso = value.isoformat(timespec="seconds")
    title = format_datetime(value, "medium") + " UTC"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, title, escape(relative_text(value))
    )


def translate(problem: Problem) -> str:
    """`problem` in the reader's language (English when a template has no translation)."""
    return gettext(problem.panel_template) % dict(problem.params)


def translated_errors(problems: Iterable[Problem]) -> dict[str, list[str]]:
    """{field: [messages in the reader's language]}: the panel's form errors."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.field, []).append(translate(problem))
    return errors
