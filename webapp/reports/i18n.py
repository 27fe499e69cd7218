"""Translation helpers that work with or without Flask-Babel.

The admin panel is adding Flask-Babel. Until `Babel` is initialised (no
`app.extensions["babel"]`), these return the English text; afterwards they
translate. Strings are marked with `_()` / `ngettext()` so `pybabel extract`
finds them in this package and in templates/email/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, has_app_context


def babel_enabled() -> bool:
    """True when Flask-Babel is initialised on the current app."""
    return has_app_context() and "babel" in current_app.extensions


def gettext(text: str, **variables: Any) -> str:
    """`text` translated, then formatted with `variables` (%-style, by name)."""
    if babel_enabled():
        from flask_babel import gettext as babel_gettext

        return babel_gettext(text, **variables)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The singular or plural form for `num`; `%(num)d` is available."""
    if babel_enabled():
        from flask_babel import ngettext as babel_ngettext

        return babel_ngettext(singular, plural, num, **variables)
    return (singular if num == 1 else plural) % {"num": num, **variables}


_ = gettext


@contextmanager
def recipient_locale(language: str | None) -> Iterator[None]:
    """Render in `language` (a user's preference), else the default locale.

    Outside a request there is no browser to ask, so the locale is always
    forced; without Flask-Babel this does nothing.
    """
    if not babel_enabled():
        yield
        return
    from flask_babel import force_locale

    babel = current_app.extensions["babel"]
    with force_locale(language or babel.default_locale):
        yield


def template_helpers() -> dict[str, Callable[..., str]]:
    """`_`, `gettext` and `ngettext` for templates, when Flask-Babel has not installed its own."""
    if "gettext" in current_app.jinja_env.globals:
        return {}
    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}
