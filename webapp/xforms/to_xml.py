"""JSON (a submission object) -> an XForm instance (XML)."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any
from xml.parsers import expat

from webapp.xforms.escaping import XML_DECLARATION, escape_attr, escape_text
from webapp.xforms.paths import split_path

_ASCII_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_ASCII_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ASCII_NAME_CHARS = _ASCII_NAME_START | frozenset("0123456789-.")


def _is_xml_char_accepted(document: str) -> bool:
    parser = expat.ParserCreate()
    try:
        parser.Parse(document.encode("utf-8"), True)
    except (expat.ExpatError, UnicodeError):
        return False
    return True


@lru_cache(maxsize=4096)
def _is_name_start(char: str) -> bool:
    if char < "\x80":
        return char in _ASCII_NAME_START
    # Non-ASCII: accept only what expat (XML 1.0 4th edition name classes)
    # accepts, which is also valid under the 5th edition rules.
    return _is_xml_char_accepted(f"<{char}/>")


@lru_cache(maxsize=4096)
def _is_name_char(char: str) -> bool:
    if char < "\x80":
        return char in _ASCII_NAME_CHARS
    return _is_xml_char_accepted(f"<a{char}/>")


@lru_cache(maxsize=8192)
def _xml_name(key: str) -> str:
    """Sanitize one path segment into a valid (colon-free) XML name.

    Invalid characters (including ``:``) become ``_``; a name that does not
    start with a name-start character (digit, ``-``, ``.``, ...) or starts
    with ``xml`` (any case, reserved) gets ``_`` prepended; ``""`` -> ``_``.
    """
    if _ASCII_XML_NAME.match(key) and key[:3].lower() != "xml":
        return key
    name = "".join(char if _is_name_char(char) else "_" for char in key)
    if not name or not _is_name_start(name[0]) or name[:3].lower() == "xml":
        name = "_" + name
    return name


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        # The JSON text of the number (json.dumps writes NaN/Infinity too).
        return float.__repr__(value) if math.isfinite(value) else json.dumps(value)
    return str(value)


class _Node:
    """An element under construction: ordered children, groups merged by name."""

    __slots__ = ("children", "groups")

    def __init__(self) -> None:
        self.children: list[tuple[str, _Node | str]] = []
        self.groups: dict[str, _Node] = {}

    def group(self, name: str) -> _Node:
        node = self.groups.get(name)
        if node is None:
            node = self.groups[name] = _Node()
            self.children.append((name, node))
        return node


def json_to_xml(data: dict[str, Any], root_tag: str) -> bytes:
    """Convert a submission object to an XML instance (UTF-8 bytes).

    The document has an XML declaration and a root element named
    ``root_tag`` (the form uid, sanitized) carrying ``id="<root_tag>"`` as
    XForm instances do. Compact output (no indentation).

    * Nested objects -> nested elements; flat slash keys
      (``household/water/source``) -> nested elements, merged with siblings
      sharing a prefix (``household/head_name`` and ``household/members`` end
      under one ``<household>``), at the position of the first key.
    * A list -> one element per item, named after the key: objects become
      repeat instances (item keys that are full paths, i.e. start with the
      list's path + ``/``, are made relative to it), scalars become leaves.
      An empty list produces nothing (not even the groups of a flat key).
    * ``None`` -> empty element; ``True``/``False`` -> ``true``/``false``;
      numbers -> their JSON text; strings escaped (``&``, ``<``, ``>``, and
      ``\\r`` as ``&#13;``). Characters XML cannot carry (control characters,
      lone surrogates) become U+FFFD.
    * Keys are split on ``/`` (empty segments ignored) and each segment is
      sanitized into an XML name: invalid characters (``:`` too) -> ``_``;
      ``_`` is prepended to a leading digit, ``-``, ``.`` or ``xml``.
    * Key order is kept.

    Raises TypeError if ``data`` is not a dict; RecursionError for absurdly
    deep data (more than the interpreter's recursion limit).
    """
    if not isinstance(data, dict):
        raise TypeError("The submission must be a JSON object.")
    root = _Node()
    _json_object_to_nodes(root, data, (), False)
    name = _xml_name(str(root_tag))
    parts = [XML_DECLARATION, f'<{name} id="{escape_attr(str(root_tag))}"']
    if root.children:
        parts.append(">")
        _serialize_nodes(root, parts)
        parts.append(f"</{name}>")
    else:
        parts.append(" />")
    return "".join(parts).encode("utf-8")


def _json_object_to_nodes(
    node: _Node, obj: dict[str, Any], path: tuple[str, ...], in_list: bool
) -> None:
    depth = len(path)
    for key, value in obj.items():
        if not value and isinstance(value, list | tuple):
            continue  # no repeat instance: no element, not even its groups
        segments = split_path(key if isinstance(key, str) else str(key))
        if in_list and len(segments) > depth and tuple(segments[:depth]) == path:
            full = tuple(segments)
            segments = segments[depth:]
        else:
            full = path + tuple(segments)
        parent = node
        for segment in segments[:-1]:
            parent = parent.group(_xml_name(segment))
        _json_value_to_nodes(parent, _xml_name(segments[-1]), value, full)


def _json_value_to_nodes(parent: _Node, name: str, value: Any, full: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        _json_object_to_nodes(parent.group(name), value, full, False)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, dict):
                child = _Node()
                _json_object_to_nodes(child, item, full, True)
                parent.children.append((name, child))
            elif isinstance(item, list | tuple):
                _json_value_to_nodes(parent, name, item, full)
            else:
                parent.children.append((name, _scalar_text(item)))
    else:
        parent.children.append((name, _scalar_text(value)))


def _serialize_nodes(node: _Node, parts: list[str]) -> None:
    append = parts.append
    for name, child in node.children:
        if isinstance(child, str):
            if child:
                append(f"<{name}>{escape_text(child)}</{name}>")
            else:
                append(f"<{name} />")
        elif child.children:
            append(f"<{name}>")
            _serialize_nodes(child, parts)
            append(f"</{name}>")
        else:
            append(f"<{name} />")
