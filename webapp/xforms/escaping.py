"""Writing XML text: the declaration, and escaping of text and attribute values."""

from __future__ import annotations

import re

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters that XML 1.0 does not allow at all (control characters, lone
# surrogates, U+FFFE/U+FFFF); they are replaced by U+FFFD when serializing.
_INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape_text(text: str) -> str:
    """Escape element text: ``&``, ``<``, ``>``, and ``\\r`` as ``&#13;`` (it
    would be read back as ``\\n``); characters XML cannot carry become U+FFFD."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")  # would be normalized to \n otherwise
    if not text.isascii() or not text.isprintable():
        text = _INVALID_XML_CHARS.sub("\ufffd", text)
    return text


def escape_attr(text: str) -> str:
    """Escape a double-quoted attribute value (also ``"``, newlines and tabs,
    which attribute normalization would turn into spaces)."""
    text = escape_text(text)
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\n" in text:
        text = text.replace("\n", "&#10;")
    if "\t" in text:
        text = text.replace("\t", "&#9;")
    return text
