"""XForm instance (XML) -> KoboToolbox-style JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from webapp.xforms.paths import element_children, local_name


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

    Recursion is bounded by the tree depth (at most
    :data:`~webapp.xforms.parsing.MAX_XML_DEPTH` for trees from ``parse_xml``).
    """
    out: dict[str, Any] = {}
    _children_to_json(root, "", out)
    return out


def _children_to_json(elem: ET.Element, prefix: str, out: dict[str, Any]) -> None:
    children = element_children(elem)
    if not children:
        return
    names = [local_name(child.tag) for child in children]
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
            if not any(element_children(occurrence) for occurrence in repeat):
                out[path] = [occurrence.text or "" for occurrence in repeat]
            else:
                items: list[Any] = []
                item_prefix = path + "/"
                for occurrence in repeat:
                    item: dict[str, Any] = {}
                    _children_to_json(occurrence, item_prefix, item)
                    items.append(item)
                out[path] = items
        elif len(child) and any(isinstance(grandchild.tag, str) for grandchild in child):
            _children_to_json(child, path + "/", out)
        else:
            out[path] = child.text or ""
