"""Names and paths of the nodes of an instance, shared by the converters
and by subset selection."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def local_name(tag: str) -> str:
    """The local name of an ElementTree tag (``{uri}name`` -> ``name``)."""
    if tag[:1] == "{":
        return tag.rpartition("}")[2]
    return tag


def element_children(elem: ET.Element) -> list[ET.Element]:
    """The child elements of ``elem`` (comments and processing instructions left out)."""
    return [child for child in elem if isinstance(child.tag, str)]


def split_path(key: str) -> list[str]:
    """Split a key into path segments, ignoring empty ones (``a//b`` = ``a/b``);
    a key with no name at all (``""``, ``"/"``) is one segment ``""``."""
    parts = key.split("/")
    if "" in parts:
        parts = [part for part in parts if part] or [""]
    return parts
