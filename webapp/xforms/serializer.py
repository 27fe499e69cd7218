"""Serializing a parsed instance (an ElementTree) with its namespace declarations.

ElementTree's own serializer drops the document's namespace prefixes and
unused declarations (``xmlns:jr``); receivers of XForm instances expect them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from webapp.xforms.escaping import XML_DECLARATION, escape_attr, escape_text
from webapp.xforms.parsing import Declarations

_XML_NS = "http://www.w3.org/XML/1998/namespace"


def serialize_instance(root: ET.Element, declarations: Declarations) -> bytes:
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
        f' xmlns:{prefix}="{escape_attr(uri)}"' if prefix else f' xmlns="{escape_attr(uri)}"'
        for prefix, uri in decls
    )
    parts = [XML_DECLARATION]
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
            parts.append(f' {_qualified(key, attr_prefix)}="{escape_attr(value)}"')
        if elem.text or len(elem):
            parts.append(">")
            if elem.text:
                parts.append(escape_text(elem.text))
            for child in elem:
                _serialize_element(child, parts, element_prefix, attr_prefix)
            parts.append(f"</{name}>")
        else:
            parts.append(" />")
    if elem.tail and ns_attrs is None:
        parts.append(escape_text(elem.tail))
