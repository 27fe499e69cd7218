"""Subsets: what a hook's ``subset_fields`` keeps of a submission.

Selection works on the submission object (JSON, :func:`select_subset_json`)
and on an XML instance (:func:`select_subset_xml`) with the same rules (see
README, "What a hook sends"); :func:`validate_subset_fields` checks the
setting when a hook is saved.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from webapp.validation import Problem
from webapp.xforms import local_name, split_path

MAX_SUBSET_FIELDS = 500
MAX_SUBSET_FIELD_LENGTH = 255

_WHITESPACE = re.compile(r"\s")


@lru_cache(maxsize=1024)
def _compile_tags(tags: tuple[str, ...]) -> tuple[frozenset[str], frozenset[tuple[str, ...]]]:
    """Split tags into names (no ``/``: any depth) and exact paths."""
    names: set[str] = set()
    paths: set[tuple[str, ...]] = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"Subset fields must be strings, not {type(tag).__name__}.")
        tag = tag.strip()
        segments = split_path(tag)
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
    """Keep only the selected fields of a submission object.

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
        segments = split_path(key if isinstance(key, str) else str(key))
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
    """Keep only the selected elements of an XML instance.

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
        name = local_name(child.tag)
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


# Validation of the setting (the panel and the API share it)


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def validate_subset_fields(tags: Any) -> list[Problem]:
    """Return the problems of a ``subset_fields`` value (``[]`` = valid).

    Must be a list of strings, at most :data:`MAX_SUBSET_FIELDS` of them;
    each non-empty, at most :data:`MAX_SUBSET_FIELD_LENGTH` characters, with
    no whitespace, no leading or trailing ``/`` and no ``//``. Duplicates are
    allowed. An empty list is valid (send everything).

    One problem per kind, naming at most :data:`_NAMED_TAGS` tags (the rest
    are counted), so 10,000 bad tags give a short answer. Codes are
    ``subset.<kind>.one|many|more`` (see ``webapp.validation``).
    """
    if not isinstance(tags, list):
        return [Problem(FIELD, "subset.not_list")]
    problems: list[Problem] = []
    if len(tags) > MAX_SUBSET_FIELDS:
        problems.append(
            Problem(FIELD, "subset.too_many", {"most": MAX_SUBSET_FIELDS, "count": len(tags)})
        )
    # kind -> the offending tags (by value) or positions (#n), in order, without repeats
    found: dict[str, dict[str, None]] = {kind: {} for kind in _KINDS}
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
    for kind in _KINDS:
        names = list(found[kind])
        if not names:
            continue
        params: dict[str, Any] = {
            "tags": ", ".join(names[:_NAMED_TAGS]),
            "most": MAX_SUBSET_FIELD_LENGTH,
        }
        if len(names) == 1:
            form = "one"
        elif len(names) <= _NAMED_TAGS:
            form = "many"
        else:
            form = "more"
            params["more"] = len(names) - _NAMED_TAGS
        problems.append(Problem(FIELD, f"subset.{kind}.{form}", params))
    return problems


FIELD = "subset_fields"
#: The most tags a subset_fields message names; the others are counted.
_NAMED_TAGS = 3
#: The kinds of bad tag, in the order they are reported.
_KINDS = ("type", "empty", "space", "slash", "double", "long")
