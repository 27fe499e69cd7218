"""Keeping a hook's secrets out of what Formhooks stores and shows.

An endpoint may echo the request it got (headers, basic auth) in its answer
or in a redirect's Location. The start of that answer is stored in the log,
shown to viewers and mailed to report recipients (docs/security.md, "Secrets
in answers"), so the sender replaces the hook's known secret values in it
with REDACTED: the password, the basic-auth header value, and every custom
header value, as written and in their common escaped forms (JSON, URL).
Values shorter than MIN_SECRET characters are left alone: replacing every
"1" of an answer would hide the answer and protect nothing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from webapp.delivery.headers import HeaderError, basic_auth

REDACTED = "[redacted]"
MIN_SECRET = 4


def secrets_of(hook_headers: Mapping[str, str], auth: tuple[str, str] | None) -> tuple[str, ...]:
    """The strings to redact for these headers and basic auth, longest first."""
    if not hook_headers and auth is None:
        return ()
    return _secrets(tuple(hook_headers.values()), auth)


# Every send of a hook asks for the same secrets: work them out once per process
# (they are in this process's memory anyway, in the hook's settings).
@functools.lru_cache(maxsize=512)
def _secrets(header_values: tuple[str, ...], auth: tuple[str, str] | None) -> tuple[str, ...]:
    values = [str(value).strip(" \t") for value in header_values]
    if auth is not None:
        user, password = auth
        values.append(password)
        try:
            header = basic_auth(user, password)
        except HeaderError:
            pass  # never sent: the send fails before any answer
        else:
            values += [header, header.removeprefix("Basic "), f"{user}:{password}"]
    forms = set()
    for value in values:
        if len(value) >= MIN_SECRET:
            forms.update(_spellings(value))
    return tuple(sorted(forms, key=len, reverse=True))


def _spellings(value: str) -> Iterable[str]:
    yield value
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield quote(value, safe="")
    yield quote_plus(value, safe="")
    if not value.isascii():  # as sent (UTF-8), read back as Latin-1
        yield value.encode("utf-8").decode("latin-1")


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by REDACTED.

    An excerpt is cut at a fixed size, so it may end inside a secret: a tail
    that is the start of a secret (MIN_SECRET characters or more) goes too.
    """
    if not secrets or not text:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for secret in secrets:
        cut = _cut_tail(text, secret)
        if cut is not None:
            return text[:cut] + REDACTED
    return text


def _cut_tail(text: str, secret: str) -> int | None:
    """Where a tail of ``text`` that starts ``secret`` begins, or None."""
    start = max(0, len(text) - len(secret) + 1)
    head = secret[:MIN_SECRET]
    at = text.find(head, start)
    while at != -1:
        if secret.startswith(text[at:]):
            return at
        at = text.find(head, at + 1)
    return None
