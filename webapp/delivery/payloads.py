"""Build what a hook sends: JSON/XML conversion, subsets and custom wrappers.

Pure Python (no Flask, no database): everything here works on bytes, dicts and
``xml.etree.ElementTree`` elements, so it can run in the web process (to
validate a hook) and in the worker (to build a delivery).

Contract (SPEC §4-§5):

* JSON sent for an XML submission is the KoboToolbox-style JSON of the XForm
  instance (:func:`xml_to_json`): groups flattened to slash keys, repeats as
  lists of objects whose keys are full paths.
* XML sent for a JSON submission is an XML instance whose root element is the
  form uid (:func:`json_to_xml`).
* ``subset_fields`` selects nodes by name (tag without ``/``, any depth) or by
  exact path (tag with ``/``); a selected group brings its whole subtree and
  the ancestors of selected nodes are kept (:func:`select_subset_json`,
  :func:`select_subset_xml`).
* ``payload_template`` (JSON only) is a JSON text in which every
  ``%SUBMISSION%`` is replaced by the (subset) submission object.

Results may share unmodified sub-objects / sub-elements with their input (no
needless deep copies): treat inputs and outputs as read-only.
"""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from xml.parsers import expat

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import DefusedXMLParser

__all__ = [
    "MAX_SUBSET_FIELDS",
    "MAX_SUBSET_FIELD_LENGTH",
    "MAX_TEMPLATE_LENGTH",
    "MAX_XML_DEPTH",
    "PLACEHOLDER",
    "PayloadError",
    "XMLInputError",
    "apply_payload_template",
    "build_payload",
    "json_to_xml",
    "parse_xml",
    "select_subset_json",
    "select_subset_xml",
    "validate_payload_template",
    "validate_subset_fields",
    "xml_to_json",
]

MAX_XML_DEPTH = 100
"""Deepest element nesting accepted by :func:`parse_xml` (the root is level 1)."""

PLACEHOLDER = "%SUBMISSION%"
MAX_TEMPLATE_LENGTH = 65536
MAX_SUBSET_FIELDS = 500
MAX_SUBSET_FIELD_LENGTH = 255

JSON_CONTENT_TYPE = "application/json"
XML_CONTENT_TYPE = "application/xml"
XML_ONLY_JSON_WRAPPER = "A custom wrapper can only be used with the JSON format."

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_XML_NS = "http://www.w3.org/XML/1998/namespace"

# Characters that XML 1.0 does not allow at all (control characters, lone
# surrogates, U+FFFE/U+FFFF); they are replaced by U+FFFD when serializing.
_INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ASCII_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_ASCII_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ASCII_NAME_CHARS = _ASCII_NAME_START | frozenset("0123456789-.")
_WHITESPACE = re.compile(r"\s")
_TEMPLATE_PROBE = '{"x":1}'


class PayloadError(ValueError):
    """A payload cannot be built; permanent (retrying will not help).

    ``str(e)`` is a clear, user-facing message (fit for a delivery log).
    """


class XMLInputError(ValueError):
    """The body is not acceptable XML.

    ``str(e)`` says what is wrong, with the line and column when known.
    """


# --------------------------------------------------------------------------
# Parsing XML
# --------------------------------------------------------------------------


class _LimitedTreeBuilder(ET.TreeBuilder):
    """A TreeBuilder that refuses deep nesting as elements open.

    The check runs while parsing (expat and the C TreeBuilder are iterative),
    so a 10,000-deep document is refused after 101 start tags, without ever
    building a deep tree or recursing. It also records the namespace
    declarations (``start_ns``), which ElementTree otherwise drops.
    """

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.namespaces: list[tuple[str, str]] = []

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self.depth += 1
        if self.depth > MAX_XML_DEPTH:
            raise _TooDeep
        return super().start(tag, attrs)

    def end(self, tag: str) -> ET.Element:
        self.depth -= 1
        return super().end(tag)

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces.append((prefix, uri))


class _TooDeep(Exception):
    pass


def _parse_xml(body: bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    """Parse like :func:`parse_xml`; also return the namespace declarations."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        body = bytes(body)
    if not body or body.isspace():
        raise XMLInputError("The XML body is empty.")
    builder = _LimitedTreeBuilder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        root = parser.close()
    except _TooDeep:
        raise XMLInputError(
            f"XML is nested too deeply (more than {MAX_XML_DEPTH} levels)."
        ) from None
    except DTDForbidden:
        raise XMLInputError(
            "XML with a document type declaration (<!DOCTYPE ...>) is not accepted."
        ) from None
    except EntitiesForbidden as exc:
        raise XMLInputError(
            f"XML entity declarations are not accepted (entity {exc.name!r})."
        ) from None
    except ExternalReferenceForbidden:
        raise XMLInputError("XML external entity references are not accepted.") from None
    except DefusedXmlException as exc:  # any other defusedxml refusal
        raise XMLInputError(f"XML refused: {exc}.") from None
    except ET.ParseError as exc:
        message = str(exc)
        position = getattr(exc, "position", None)
        if position:
            # expat's message ends with ": line L, column C" (0-based column).
            message = message.rsplit(": line ", 1)[0]
            line, column = position
            message = f"{message} (line {line}, column {column + 1})"
        raise XMLInputError(f"Malformed XML: {message}.") from None
    except LookupError as exc:  # unknown encoding in the XML declaration
        raise XMLInputError(f"XML encoding not supported: {exc}.") from None
    except (UnicodeError, ValueError) as exc:
        raise XMLInputError(f"Malformed XML: {exc}.") from None
    return root, builder.namespaces


def parse_xml(body: bytes) -> ET.Element:
    """Parse an XML document safely and return its root element.

    Uses defusedxml with ``forbid_dtd``, ``forbid_entities`` and
    ``forbid_external``: any ``<!DOCTYPE>`` (hence billion laughs and external
    entities) is refused. Nesting deeper than :data:`MAX_XML_DEPTH` levels is
    refused while parsing (no recursion). Comments and processing
    instructions are dropped.

    Raises :class:`XMLInputError` with a clear message (line and 1-based
    column when known) for malformed XML, a DTD or entities, too deep nesting
    or an invalid/unknown encoding.
    """
    return _parse_xml(body)[0]


def _local(tag: str) -> str:
    """The local name of an ElementTree tag (``{uri}name`` -> ``name``)."""
    if tag[:1] == "{":
        return tag.rpartition("}")[2]
    return tag


def _element_children(elem: ET.Element) -> list[ET.Element]:
    return [child for child in elem if isinstance(child.tag, str)]


# --------------------------------------------------------------------------
# XML -> KoboToolbox JSON
# --------------------------------------------------------------------------


def xml_to_json(root: ET.Element) -> dict[str, Any]:
    """Convert an XForm instance to KoboToolbox-style JSON.

    * The root element is not part of the paths; its attributes (``id``,
      ``version``, namespace declarations) and all other attributes are
      ignored.
    * Groups are flattened to slash keys:
      ``{"household/water/source": "borehole"}``.
    * A repeat (an element name appearing more than once among siblings)
      becomes a list under its path, in the position of its first
      occurrence. Each item is an object whose keys are FULL paths:
      ``{"crop_repeat": [{"crop_repeat/crop_name": "maize"}, ...]}``. Nested
      repeats inside an item are lists under their full path too.
      If every occurrence is a leaf (no child elements) the list holds their
      texts (strings); otherwise leaf occurrences become ``{}``.
    * A single occurrence of a repeat cannot be told from a group without
      the form definition: it is flattened as a group.
    * A leaf's value is its text, verbatim (an empty element gives ``""``).
      Text mixed with child elements (e.g. indentation) is ignored.
    * Namespaced tags use their local name.

    Recursion is bounded by the tree depth (at most :data:`MAX_XML_DEPTH`
    for trees from :func:`parse_xml`).
    """
    out: dict[str, Any] = {}
    _xml_children_to_json(root, "", out)
    return out


def _xml_children_to_json(elem: ET.Element, prefix: str, out: dict[str, Any]) -> None:
    children = _element_children(elem)
    if not children:
        return
    names = [_local(child.tag) for child in children]
    occurrences: dict[str, list[ET.Element]] = {}
    if len(set(names)) != len(names):
        for name, child in zip(names, children, strict=True):
            occurrences.setdefault(name, []).append(child)
    for name, child in zip(names, children, strict=True):
        path = prefix + name
        repeat = occurrences.get(name)
        if repeat is not None and len(repeat) > 1:
            if repeat[0] is not child:
                continue  # the whole repeat was emitted at its first occurrence
            if not any(_element_children(occurrence) for occurrence in repeat):
                out[path] = [occurrence.text or "" for occurrence in repeat]
            else:
                items: list[Any] = []
                item_prefix = path + "/"
                for occurrence in repeat:
                    item: dict[str, Any] = {}
                    _xml_children_to_json(occurrence, item_prefix, item)
                    items.append(item)
                out[path] = items
        elif len(child) and any(isinstance(grandchild.tag, str) for grandchild in child):
            _xml_children_to_json(child, path + "/", out)
        else:
            out[path] = child.text or ""


# --------------------------------------------------------------------------
# JSON -> XML
# --------------------------------------------------------------------------


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


def _split_path(key: str) -> list[str]:
    """Split a key into path segments, ignoring empty ones (``a//b`` = ``a/b``);
    a key with no name at all (``""``, ``"/"``) is one segment ``""``."""
    parts = key.split("/")
    if "" in parts:
        parts = [part for part in parts if part] or [""]
    return parts


def _escape_text(text: str) -> str:
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


def _escape_attr(text: str) -> str:
    text = _escape_text(text)
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\n" in text:
        text = text.replace("\n", "&#10;")
    if "\t" in text:
        text = text.replace("\t", "&#9;")
    return text


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
    deep data (:func:`build_payload` turns both into :class:`PayloadError`).
    """
    if not isinstance(data, dict):
        raise TypeError("The submission must be a JSON object.")
    root = _Node()
    _json_object_to_nodes(root, data, (), False)
    name = _xml_name(str(root_tag))
    parts = [_XML_DECLARATION, f'<{name} id="{_escape_attr(str(root_tag))}"']
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
        segments = _split_path(key if isinstance(key, str) else str(key))
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
                append(f"<{name}>{_escape_text(child)}</{name}>")
            else:
                append(f"<{name} />")
        elif child.children:
            append(f"<{name}>")
            _serialize_nodes(child, parts)
            append(f"</{name}>")
        else:
            append(f"<{name} />")


# --------------------------------------------------------------------------
# Subsets
# --------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _compile_tags(tags: tuple[str, ...]) -> tuple[frozenset[str], frozenset[tuple[str, ...]]]:
    """Split tags into names (no ``/``: any depth) and exact paths."""
    names: set[str] = set()
    paths: set[tuple[str, ...]] = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"Subset fields must be strings, not {type(tag).__name__}.")
        tag = tag.strip()
        segments = _split_path(tag)
        if segments == [""]:
            continue
        if "/" in tag:
            paths.add(tuple(segments))
        else:
            names.add(tag)
    return frozenset(names), frozenset(paths)


def _selector(tags: Iterable[str]) -> tuple[frozenset[str], frozenset[tuple[str, ...]]]:
    if isinstance(tags, str):
        raise TypeError("Subset fields must be a list of strings, not a string.")
    return _compile_tags(tuple(tags))


def _is_selected(
    segments: tuple[str, ...],
    start: int,
    names: frozenset[str],
    paths: frozenset[tuple[str, ...]],
) -> bool:
    """Is the node at ``segments`` or one of its ancestors deeper than
    ``start`` segments selected?"""
    for index in range(start, len(segments)):
        if segments[index] in names:
            return True
    if paths:
        for index in range(start + 1, len(segments) + 1):
            if segments[:index] in paths:
                return True
    return False


def select_subset_json(data: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    """Keep only the selected fields of a submission object (SPEC §5).

    * A tag without ``/`` selects every node with that name at any depth
      (``q3`` selects ``group1/q3``; ``subgroup1`` selects
      ``group2/subgroup1/q4`` but not ``group2/subgroup11/q1``: whole path
      segments only). A tag with ``/`` selects that exact path.
    * A selected node brings its whole subtree; the containers of selected
      nodes (objects, lists) are kept so the structure stays valid. In a
      list of repeat items each item keeps its selected keys and items that
      end up empty are dropped; a container left empty is dropped.
    * Paths: a flat key ``household/water/source`` and nested objects
      ``{"household": {"water": {"source": ...}}}`` have the same path. In a
      list at path P, an item key that starts with ``P/`` is a full path,
      otherwise it is relative to P. Empty segments are ignored
      (``a//b`` is ``a/b``; a key ``""`` is one segment named ``""``).
    * The structure is preserved (flat stays flat, nested stays nested), key
      order too. Selected values are shared with ``data``, not copied.
    * An empty tag list returns ``data`` itself, unchanged.

    Raises TypeError if a tag is not a string.
    """
    if not tags:
        return data
    names, paths = _selector(tags)
    if not names and not paths:
        return data
    return _filter_json_object(data, (), False, names, paths)


def _filter_json_object(
    obj: dict[str, Any],
    path: tuple[str, ...],
    in_list: bool,
    names: frozenset[str],
    paths: frozenset[tuple[str, ...]],
) -> dict[str, Any]:
    depth = len(path)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        segments = _split_path(key if isinstance(key, str) else str(key))
        if in_list and len(segments) > depth and tuple(segments[:depth]) == path:
            full = tuple(segments)
        else:
            full = path + tuple(segments)
        if _is_selected(full, depth, names, paths):
            out[key] = value
        elif isinstance(value, dict):
            sub = _filter_json_object(value, full, False, names, paths)
            if sub:
                out[key] = sub
        elif isinstance(value, list):
            items = _filter_json_list(value, full, names, paths)
            if items:
                out[key] = items
    return out


def _filter_json_list(
    items: list[Any],
    path: tuple[str, ...],
    names: frozenset[str],
    paths: frozenset[tuple[str, ...]],
) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            sub = _filter_json_object(item, path, True, names, paths)
            if sub:
                kept.append(sub)
        elif isinstance(item, list):
            sub_list = _filter_json_list(item, path, names, paths)
            if sub_list:
                kept.append(sub_list)
    return kept


def select_subset_xml(root: ET.Element, tags: list[str]) -> ET.Element:
    """Keep only the selected elements of an XML instance (SPEC §5).

    Same rules as :func:`select_subset_json`, on element local names (the
    root element is not part of the paths; repeated elements are each
    filtered and dropped when nothing in them is selected). The root element
    is always kept, with its attributes, even when nothing is selected.

    Returns a new root; the ancestors of selected elements are shallow
    copies (tag, attributes, text, tail), the selected elements themselves
    are shared with ``root``, not copied. Comments and processing
    instructions are dropped. An empty tag list returns ``root`` itself.

    Raises TypeError if a tag is not a string.
    """
    if not tags:
        return root
    names, paths = _selector(tags)
    if not names and not paths:
        return root
    new_root = _filter_xml(root, (), names, paths)
    if new_root is None:
        new_root = _shallow_copy(root)
        if _is_blank(new_root.text):
            new_root.text = None
    return new_root


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _shallow_copy(elem: ET.Element) -> ET.Element:
    clone = elem.makeelement(elem.tag, dict(elem.attrib))
    clone.text = elem.text
    clone.tail = elem.tail
    return clone


def _filter_xml(
    elem: ET.Element,
    path: tuple[str, ...],
    names: frozenset[str],
    paths: frozenset[tuple[str, ...]],
) -> ET.Element | None:
    """A filtered shallow copy of ``elem`` (not selected itself), or None
    when nothing below it is selected."""
    kept: list[ET.Element] = []
    last_child: ET.Element | None = None
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        last_child = child
        name = _local(child.tag)
        child_path = (*path, name)
        if name in names or child_path in paths:
            kept.append(child)
        elif len(child):
            sub = _filter_xml(child, child_path, names, paths)
            if sub is not None:
                kept.append(sub)
    if not kept:
        return None
    # Indented input: the last kept child takes the tail (indentation before
    # the closing tag) of the original last child, so the output stays tidy.
    last_kept = kept[-1]
    if (
        last_child is not None
        and last_kept.tail != last_child.tail
        and _is_blank(last_kept.tail)
        and _is_blank(last_child.tail)
    ):
        last_kept = copy.copy(last_kept)  # shallow: shares its children
        last_kept.tail = last_child.tail
        kept[-1] = last_kept
    new = _shallow_copy(elem)
    new.extend(kept)
    return new


# --------------------------------------------------------------------------
# Serializing an ElementTree with its namespace declarations
# --------------------------------------------------------------------------


def _serialize_element_tree(root: ET.Element, declarations: list[tuple[str, str]]) -> bytes:
    """Serialize ``root`` as UTF-8 with an XML declaration.

    The namespace declarations of the original document (``declarations``,
    in document order; ElementTree itself drops them) are all written on the
    root element, with their original prefixes, so unused ones such as
    ``xmlns:jr`` survive too. A namespace used but not declared gets a
    generated ``nsN`` prefix. A default namespace is kept only if no element
    of the tree is outside any namespace (it would capture it otherwise).
    """
    elem_uris: set[str] = set()
    attr_uris: set[str] = set()
    unqualified_element = False
    for elem in root.iter():
        tag = elem.tag
        if not isinstance(tag, str):
            continue
        if tag[:1] == "{":
            elem_uris.add(tag[1:].partition("}")[0])
        else:
            unqualified_element = True
        for key in elem.attrib:
            if key[:1] == "{":
                attr_uris.add(key[1:].partition("}")[0])

    element_prefix: dict[str, str] = {_XML_NS: "xml"}  # uri -> prefix ("" = default)
    attr_prefix: dict[str, str] = {_XML_NS: "xml"}  # uri -> non-empty prefix
    taken: set[str] = {"xml"}
    decls: list[tuple[str, str]] = []
    for prefix, uri in declarations:
        if prefix in taken or uri == _XML_NS or (not prefix and (unqualified_element or not uri)):
            continue
        taken.add(prefix)
        decls.append((prefix, uri))
        element_prefix.setdefault(uri, prefix)
        if prefix:
            attr_prefix.setdefault(uri, prefix)
    counter = 0
    for uri in sorted(elem_uris | attr_uris):
        if (uri in elem_uris and uri not in element_prefix) or (
            uri in attr_uris and uri not in attr_prefix
        ):
            while f"ns{counter}" in taken:
                counter += 1
            prefix = f"ns{counter}"
            taken.add(prefix)
            decls.append((prefix, uri))
            element_prefix.setdefault(uri, prefix)
            attr_prefix.setdefault(uri, prefix)

    ns_attrs = "".join(
        f' xmlns:{prefix}="{_escape_attr(uri)}"' if prefix else f' xmlns="{_escape_attr(uri)}"'
        for prefix, uri in decls
    )
    parts = [_XML_DECLARATION]
    _serialize_element(root, parts, element_prefix, attr_prefix, ns_attrs)
    return "".join(parts).encode("utf-8")


def _qualified(name: str, prefixes: dict[str, str]) -> str:
    if name[:1] != "{":
        return name
    uri, _, local = name[1:].partition("}")
    prefix = prefixes[uri]
    return f"{prefix}:{local}" if prefix else local


def _serialize_element(
    elem: ET.Element,
    parts: list[str],
    element_prefix: dict[str, str],
    attr_prefix: dict[str, str],
    ns_attrs: str | None = None,
) -> None:
    """Append ``elem`` to ``parts``; ``ns_attrs`` is given for the root only
    (its namespace declarations; the root's tail is not written)."""
    tag = elem.tag
    if tag is ET.Comment:
        parts.append(f"<!--{elem.text or ''}-->")
    elif tag is ET.ProcessingInstruction:
        parts.append(f"<?{elem.text or ''}?>")
    else:
        name = _qualified(tag, element_prefix)
        parts.append(f"<{name}{ns_attrs or ''}")
        for key, value in elem.attrib.items():
            parts.append(f' {_qualified(key, attr_prefix)}="{_escape_attr(value)}"')
        if elem.text or len(elem):
            parts.append(">")
            if elem.text:
                parts.append(_escape_text(elem.text))
            for child in elem:
                _serialize_element(child, parts, element_prefix, attr_prefix)
            parts.append(f"</{name}>")
        else:
            parts.append(" />")
    if elem.tail and ns_attrs is None:
        parts.append(_escape_text(elem.tail))


# --------------------------------------------------------------------------
# Validation (hook settings)
# --------------------------------------------------------------------------


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def validate_subset_fields(tags: Any) -> list[str]:
    """Return error messages for a ``subset_fields`` value (``[]`` = valid).

    Must be a list of strings, at most :data:`MAX_SUBSET_FIELDS` of them;
    each non-empty, at most :data:`MAX_SUBSET_FIELD_LENGTH` characters, with
    no whitespace, no leading or trailing ``/`` and no ``//``. Duplicates are
    allowed. An empty list is valid (send everything).

    One message per kind of problem, naming at most :data:`_NAMED_TAGS` tags
    (the rest are counted), so 10,000 bad tags give a short answer.
    """
    if not isinstance(tags, list):
        return ["Subset fields must be a list of strings."]
    errors: list[str] = []
    if len(tags) > MAX_SUBSET_FIELDS:
        errors.append(f"At most {MAX_SUBSET_FIELDS} subset fields are allowed ({len(tags)} given).")
    # kind -> the offending tags (by value) or positions (#n), in order, without repeats
    found: dict[str, dict[str, None]] = {kind: {} for kind in _SUBSET_PROBLEMS}
    for index, tag in enumerate(tags, start=1):
        if not isinstance(tag, str):
            found["type"][f"#{index}"] = None
        elif not tag:
            found["empty"][f"#{index}"] = None
        elif len(tag) > MAX_SUBSET_FIELD_LENGTH:
            found["long"][f"#{index}"] = None
        elif _WHITESPACE.search(tag):
            found["space"][_short(tag)] = None
        elif tag[0] == "/" or tag[-1] == "/":
            found["slash"][_short(tag)] = None
        elif "//" in tag:
            found["double"][_short(tag)] = None
    for kind, (one, many) in _SUBSET_PROBLEMS.items():
        names = list(found[kind])
        if len(names) == 1:
            errors.append(f"Subset field {names[0]} {one}")
        elif names:
            listed = ", ".join(names[:_NAMED_TAGS])
            if len(names) > _NAMED_TAGS:
                listed += f" and {len(names) - _NAMED_TAGS} more"
            errors.append(f"Subset fields {listed} {many}")
    return errors


#: The most tags a subset_fields message names; the others are counted.
_NAMED_TAGS = 3
#: kind -> (end of the message for one tag, for several).
_SUBSET_PROBLEMS = {
    "type": ("must be a string.", "must be strings."),
    "empty": ("is empty.", "are empty."),
    "space": ("must not contain whitespace.", "must not contain whitespace."),
    "slash": ("must not start or end with '/'.", "must not start or end with '/'."),
    "double": ("must not contain '//'.", "must not contain '//'."),
    "long": (
        f"is too long (at most {MAX_SUBSET_FIELD_LENGTH} characters).",
        f"are too long (at most {MAX_SUBSET_FIELD_LENGTH} characters).",
    ),
}


def _template_position(template: str, substituted_pos: int, replacement_len: int) -> int:
    """Map a position in the template with placeholders replaced back to the
    original template (a position inside a replacement maps to the start of
    its placeholder)."""
    sub_offset = orig_offset = 0
    pieces = template.split(PLACEHOLDER)
    for index, piece in enumerate(pieces):
        if substituted_pos < sub_offset + len(piece):
            return orig_offset + substituted_pos - sub_offset
        sub_offset += len(piece)
        orig_offset += len(piece)
        if index < len(pieces) - 1:
            if substituted_pos < sub_offset + replacement_len:
                return orig_offset
            sub_offset += replacement_len
            orig_offset += len(PLACEHOLDER)
    return len(template)


def _line_column(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, column


def validate_payload_template(template: str | None, export_type: str) -> list[str]:
    """Return error messages for a ``payload_template`` (``[]`` = valid).

    * ``None``, ``""`` or whitespace only: no wrapper, valid
      (:func:`build_payload` ignores such a template too).
    * Only with the JSON format: with ``export_type == "xml"`` a wrapper is
      refused ("A custom wrapper can only be used with the JSON format.").
    * At most :data:`MAX_TEMPLATE_LENGTH` characters.
    * It must parse as JSON with ``{}`` in place of every ``%SUBMISSION%``
      (the error gives the line/column in the template), and also with a
      non-empty object in place of it, which catches a placeholder inside a
      JSON string (``"%SUBMISSION%"`` in quotes). A template without the
      placeholder is allowed (a fixed JSON body).
    """
    if template is None:
        return []
    if not isinstance(template, str):
        return ["The custom wrapper must be a string."]
    if not template.strip():
        return []
    if export_type == "xml":
        return [XML_ONLY_JSON_WRAPPER]
    if len(template) > MAX_TEMPLATE_LENGTH:
        return [f"The custom wrapper is too long (at most {MAX_TEMPLATE_LENGTH} characters)."]
    try:
        json.loads(
            template.replace(PLACEHOLDER, "{}"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        pos = _template_position(template, exc.pos, 2)
        line, column = _line_column(template, pos)
        return [
            f"The custom wrapper is not valid JSON (with {{}} in place of {PLACEHOLDER}): "
            f"{exc.msg} at line {line}, column {column}."
        ]
    except RecursionError:
        return ["The custom wrapper is nested too deeply."]
    except ValueError as exc:  # NaN, Infinity, 1e999, numbers with too many digits
        return [f"The custom wrapper is not valid JSON: {str(exc)[:200]}"]
    if PLACEHOLDER in template:
        try:
            json.loads(template.replace(PLACEHOLDER, _TEMPLATE_PROBE))
        except json.JSONDecodeError:
            return [
                f"{PLACEHOLDER} must stand for a JSON value, not be inside a JSON string: "
                f'remove the quotes around it (e.g. {{"data": {PLACEHOLDER}}}).'
            ]
    return []


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is too large for a JSON number.")
    return value


def _dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def apply_payload_template(template: str, submission: dict[str, Any]) -> bytes:
    """Replace every ``%SUBMISSION%`` in ``template`` by the compact JSON of
    ``submission`` (``ensure_ascii=False``) and return UTF-8 bytes.

    Strings the encoder cannot write as UTF-8 (lone surrogates) are written
    as ``\\uXXXX`` escapes instead. Raises :class:`PayloadError` if the result
    cannot be encoded (a template with lone surrogates) or the submission
    cannot be serialized.
    """
    try:
        text = template.replace(PLACEHOLDER, _dump_json(submission))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            dumped = json.dumps(submission, ensure_ascii=True, separators=(",", ":"))
            return template.replace(PLACEHOLDER, dumped).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"The custom wrapper cannot be applied: {exc}.") from None


def _json_bytes(obj: Any) -> bytes:
    try:
        return _dump_json(obj).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: fall back to \\u escapes
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _is_json_object(body: bytes) -> bool:
    if not body:
        return False
    stripped = body.lstrip()
    if not stripped.startswith((b"{", b"\xef\xbb\xbf")):
        return False
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeError, RecursionError):
        return False


# --------------------------------------------------------------------------
# What a hook sends
# --------------------------------------------------------------------------


def build_payload(
    *,
    source_format: str,
    body: bytes,
    data: dict[str, Any],
    form_uid: str,
    export_type: str,
    subset_fields: list[str],
    payload_template: str | None,
) -> tuple[bytes, str]:
    """Build the body a hook sends and its content type (SPEC §5).

    ``source_format`` is how the submission arrived: ``"json"`` (JSON or
    urlencoded; ``data`` is its object, ``body`` the raw bytes) or ``"xml"``
    (XML / OpenRosa; ``body`` is the XML instance, ``data`` its
    :func:`xml_to_json`).

    ``export_type == "json"`` -> ``application/json``: ``data`` (subset
    applied when ``subset_fields``), wrapped by ``payload_template`` when set,
    else compact JSON (UTF-8, non-ASCII kept). A JSON submission without
    subset or wrapper whose ``body`` is a JSON object is sent byte for byte
    as received.

    ``export_type == "xml"`` -> ``application/xml``: an XML submission is
    sent as received without subset; with a subset its body is re-parsed,
    filtered and serialized (UTF-8, XML declaration, root attributes and the
    document's namespace declarations kept). A JSON submission becomes
    :func:`json_to_xml` of the (subset) data with the form uid as root.

    A template that is empty or whitespace only counts as no template.

    Raises :class:`PayloadError` (permanent; message fit for the log) when
    the payload cannot be built: wrapper with XML, unknown format, stored
    XML that does not parse, data that cannot be converted, invalid tags.
    """
    if payload_template is not None and not payload_template.strip():
        payload_template = None
    if source_format not in ("json", "xml"):
        raise PayloadError(
            f"Unknown submission format {source_format!r} (expected 'json' or 'xml')."
        )
    try:
        if export_type == "json":
            return _build_json(source_format, body, data, subset_fields, payload_template)
        if export_type == "xml":
            if payload_template is not None:
                raise PayloadError(XML_ONLY_JSON_WRAPPER)
            return _build_xml(source_format, body, data, form_uid, subset_fields)
    except XMLInputError as exc:
        raise PayloadError(f"The stored XML submission cannot be read: {exc}") from None
    except RecursionError:
        raise PayloadError("The submission is nested too deeply to be converted.") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"The payload cannot be built: {exc}") from None
    raise PayloadError(f"Unknown export type {export_type!r} (expected 'json' or 'xml').")


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError("The stored submission is not a JSON object.")
    return data


def _build_json(
    source_format: str,
    body: bytes,
    data: dict[str, Any],
    subset_fields: list[str],
    payload_template: str | None,
) -> tuple[bytes, str]:
    if (
        source_format == "json"
        and not subset_fields
        and payload_template is None
        and _is_json_object(body)
    ):
        return bytes(body), JSON_CONTENT_TYPE
    obj = _check_data(data)
    if subset_fields:
        obj = select_subset_json(obj, subset_fields)
    if payload_template is not None:
        return apply_payload_template(payload_template, obj), JSON_CONTENT_TYPE
    return _json_bytes(obj), JSON_CONTENT_TYPE


def _build_xml(
    source_format: str,
    body: bytes,
    data: dict[str, Any],
    form_uid: str,
    subset_fields: list[str],
) -> tuple[bytes, str]:
    if source_format == "xml":
        if not subset_fields:
            return bytes(body), XML_CONTENT_TYPE
        root, declarations = _parse_xml(body)
        subset = select_subset_xml(root, subset_fields)
        return _serialize_element_tree(subset, declarations), XML_CONTENT_TYPE
    obj = _check_data(data)
    if subset_fields:
        obj = select_subset_json(obj, subset_fields)
    return json_to_xml(obj, form_uid), XML_CONTENT_TYPE
