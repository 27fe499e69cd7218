"""French (and any other language) for the messages of `webapp.hook_settings`.

Those rules are shared with the JSON API, which answers in English, so their
messages are English text. The panel shows them translated when it knows
them: the fixed ones by gettext, the ones with a value in them by a pattern.
An unknown message (say, a rule added later) is shown as it is, in English.
"""

from __future__ import annotations

import re

from flask_babel import gettext


def N_(text: str) -> str:  # noqa: N802 - the usual name of gettext's no-op marker
    """Mark `text` for extraction (`pybabel extract -k N_`); it is translated later."""
    return text


# Fixed messages, marked for extraction; translate() looks them up with gettext().
FIXED = (
    N_("Enter a name."),
    N_("Enter the endpoint URL, e.g. https://example.org/hook."),
    N_("The URL must not contain spaces or control characters."),
    N_("The URL is not valid (check the brackets around an IPv6 address)."),
    N_("The URL must start with http:// or https://."),
    N_("Do not put a user name or password in the URL; use the hook's basic auth fields instead."),
    N_("The URL needs a host name, e.g. https://example.org/hook."),
    N_("The port must be a number between 1 and 65535."),
    N_("Basic auth needs a username and a password."),
    N_("The endpoint is on another host: enter the password again."),
    N_("Basic auth needs a username."),
    N_("The username must be text of at most 255 characters, without ':'."),
    N_("A custom wrapper can only be used with the JSON format."),
)

# (pattern of the English message, message with named placeholders).
PATTERNS = (
    (
        r"Only http:// and https:// URLs are supported, not (?P<scheme>.+)://\.",
        N_("Only http:// and https:// URLs are supported, not %(scheme)s://."),
    ),
    (r"The host name (?P<host>.+) is not valid\.", N_("The host name %(host)s is not valid.")),
    (
        r"(?P<host>\S+) is another way of writing (?P<ip>\S+), (?P<reason>.+); Formhooks does "
        r"not send to internal addresses \(see SSRF_ALLOWED_NETWORKS\)\.",
        N_(
            "%(host)s is another way of writing %(ip)s, an internal address (%(reason)s): "
            "Formhooks does not send to internal addresses (see SSRF_ALLOWED_NETWORKS)."
        ),
    ),
    (
        r"(?P<ip>\S+) is (?P<reason>.+); Formhooks does not send to internal addresses "
        r"\(see SSRF_ALLOWED_NETWORKS\)\.",
        N_(
            "%(ip)s is an internal address (%(reason)s): Formhooks does not send to internal "
            "addresses (see SSRF_ALLOWED_NETWORKS)."
        ),
    ),
    (
        r"Header name (?P<name>.+) is not valid \(letters, digits and - only; no spaces, "
        r"colons or line breaks\)\.",
        N_(
            "The header name %(name)s is not valid (letters, digits and - only; no spaces, "
            "colons or line breaks)."
        ),
    ),
    (
        r"Header (?P<name>.+) is set by Formhooks and cannot be changed\.",
        N_("The header %(name)s is set by Formhooks and cannot be changed."),
    ),
    (
        r"The value of header (?P<name>.+) must not contain line breaks\.",
        N_("The value of the header %(name)s must not contain line breaks."),
    ),
    (
        r"The custom wrapper is not valid JSON \(with \{\} in place of %SUBMISSION%\): "
        r"(?P<detail>.+) at line (?P<line>\d+), column (?P<column>\d+)\.",
        N_(
            "The custom wrapper is not valid JSON (with {} in place of %%SUBMISSION%%): "
            "%(detail)s at line %(line)s, column %(column)s."
        ),
    ),
    (
        r"%SUBMISSION% must stand for a JSON value, not be inside a JSON string: .*",
        N_(
            "%%SUBMISSION%% must stand for a JSON value, not be inside a JSON string: "
            'remove the quotes around it (e.g. {"data": %%SUBMISSION%%}).'
        ),
    ),
    (
        r"At most (?P<most>\d+) subset fields are allowed \((?P<count>\d+) given\)\.",
        N_("At most %(most)s fields can be chosen (%(count)s given)."),
    ),
    (
        r"Subset fields (?P<tags>.+) and (?P<count>\d+) more must not contain whitespace\.",
        N_("The fields %(tags)s and %(count)s more must not contain spaces."),
    ),
    (
        r"Subset fields (?P<tags>.+) must not contain whitespace\.",
        N_("The fields %(tags)s must not contain spaces."),
    ),
    (
        r"Subset fields (?P<tags>.+) and (?P<count>\d+) more must not start or end with '/'\.",
        N_("The fields %(tags)s and %(count)s more must not start or end with “/”."),
    ),
    (
        r"Subset fields (?P<tags>.+) must not start or end with '/'\.",
        N_("The fields %(tags)s must not start or end with “/”."),
    ),
    (
        r"Subset fields (?P<tags>.+) and (?P<count>\d+) more must not contain '//'\.",
        N_("The fields %(tags)s and %(count)s more must not contain “//”."),
    ),
    (
        r"Subset fields (?P<tags>.+) must not contain '//'\.",
        N_("The fields %(tags)s must not contain “//”."),
    ),
    (
        r"Subset field (?P<tag>.+) must not contain whitespace\.",
        N_("The field %(tag)s must not contain spaces."),
    ),
    (
        r"Subset field (?P<tag>.+) must not start or end with '/'\.",
        N_("The field %(tag)s must not start or end with “/”."),
    ),
    (
        r"Subset field (?P<tag>.+) must not contain '//'\.",
        N_("The field %(tag)s must not contain “//”."),
    ),
)
_COMPILED = tuple((re.compile(pattern + r"\Z", re.S), message) for pattern, message in PATTERNS)


def translate(message: str) -> str:
    """`message` in the user's language when it is a known one; else as it is."""
    for pattern, template in _COMPILED:
        match = pattern.match(message)
        if match:
            return gettext(template, **match.groupdict())
    return gettext(message)
