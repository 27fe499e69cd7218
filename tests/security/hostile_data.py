"""Hypothesis settings and strategies for hostile submissions, shared by tests/security."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Deterministic in CI: the same examples every run, no example database on disk.
HOSTILE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app and form serve all examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


xml_names = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=3).map(
    lambda s: s if not s.lower().startswith("xml") else "x" + s
)
xml_text = st.text(
    st.characters(
        exclude_categories=("Cs",),
        exclude_characters="\x00\ufffe\uffff",
        max_codepoint=0x10FFFF,
    ).filter(lambda c: c in "\t\n\r" or ord(c) >= 32),
    max_size=10,
)


def xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


xml_trees = st.recursive(
    st.tuples(xml_names, xml_text),
    lambda children: st.tuples(xml_names, st.lists(children, min_size=1, max_size=4)),
    max_leaves=12,
)


def render(tree) -> str:
    name, content = tree
    if isinstance(content, str):
        return f"<{name}>{xml_escape(content)}</{name}>"
    return f"<{name}>" + "".join(render(child) for child in content) + f"</{name}>"


def walk(value, *, keys: bool = False):
    """Every value nested in a decoded JSON document (and, with `keys`, its object keys)."""
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            if keys:
                stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
