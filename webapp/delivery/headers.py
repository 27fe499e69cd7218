"""The header rules: one table for what a hook may set, what is sent, what follows a redirect.

Used by the hook-settings validation (``hook_settings.py`` refuses RESERVED
names at save) and by the request builder and the sender (which drop the same
names from stored headers, so a hook saved before a rule existed still sends
a clean request). Imports nothing of the app and no HTTP client.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

#: Framing and connection management: the HTTP client's business.
FRAMING = "framing"
#: Set by Formhooks on every delivery; its value always wins.
FORMHOOKS = "formhooks"

#: Header names (lower case) a hook may not set, and why.
HEADER_RULES: Mapping[str, str] = {
    "connection": FRAMING,
    "content-length": FRAMING,
    "host": FRAMING,
    "keep-alive": FRAMING,
    "te": FRAMING,
    "trailer": FRAMING,
    "transfer-encoding": FRAMING,
    "upgrade": FRAMING,
    # Standard Webhooks' signature headers (webapp.delivery.signatures).
    "webhook-id": FORMHOOKS,
    "webhook-signature": FORMHOOKS,
    "webhook-timestamp": FORMHOOKS,
    "x-formhooks-delivery": FORMHOOKS,
    "x-formhooks-event": FORMHOOKS,
    "x-formhooks-submission": FORMHOOKS,
    "x-formhooks-test": FORMHOOKS,
}
#: Refused at save (with "is set by Formhooks and cannot be changed"); dropped at send.
RESERVED = frozenset(HEADER_RULES)
#: Dropped at send from any caller's headers, Formhooks' own included.
FRAMING_NAMES = frozenset(name for name, rule in HEADER_RULES.items() if rule == FRAMING)
#: Never sent to another origin, whoever set them. Every header the hook set
#: and its basic auth are dropped too when a redirect changes the origin.
CREDENTIAL_HEADERS = frozenset(["authorization", "cookie", "proxy-authorization"])

# RFC 9110 token characters.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


class HeaderError(ValueError):
    """A header that cannot be sent; the message names the header, never its value."""


def is_reserved(name: str) -> bool:
    """Whether a hook may not set the header ``name`` (any case)."""
    return name.lower() in RESERVED


def valid_name(name: object) -> bool:
    """Whether ``name`` is an HTTP header name (a token)."""
    return isinstance(name, str) and bool(_TOKEN.match(name))


def sendable(headers: Mapping[str, str], *, drop: frozenset[str] = RESERVED) -> dict[str, str]:
    """Headers as they go on the wire; raises HeaderError for an unusable one.

    Names in ``drop`` (lower case; by default every RESERVED name, as for a
    hook's headers) are left out; values are stripped of surrounding blanks; a
    line break or control character is refused. A non-ASCII value is sent as
    UTF-8 (what users mean by it): its UTF-8 bytes are given as Latin-1 text,
    which is how http.client encodes header values.
    """
    result: dict[str, str] = {}
    for name, value in headers.items():
        if not valid_name(name):
            raise HeaderError(f"Invalid header name {name!r}.")
        if name.lower() in drop:
            continue
        value = str(value).strip(" \t")
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            raise HeaderError(
                f"The value of header {name!r} contains a line break or control character."
            )
        result[name] = value if value.isascii() else value.encode("utf-8").decode("latin-1")
    return result


def basic_auth(user: str, password: str) -> str:
    """The Authorization value for HTTP basic auth (UTF-8); raises HeaderError for ':' in user."""
    if ":" in user:
        raise HeaderError("The basic auth user name must not contain ':'.")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
