"""webapp.delivery.subset: what subset_fields keeps, in JSON and XML, and its validation."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.xforms.samples import (
    COMMENTS,
    COMMENTS_XML,
    ODK_XML,
    SUBSET,
    XML_DECL,
    json_objects,
    kobo,
    nested,
    path_keys,
    subset_values,
)
from webapp.delivery.formats import build_payload
from webapp.delivery.subset import select_subset_json, select_subset_xml, validate_subset_fields
from webapp.xforms import json_to_xml, parse_xml, xml_to_json


def subset_xml(tags: list[str]) -> bytes:
    body, _ = build_payload(
        content_type="application/xml",
        body=EXAMPLE_XML,
        data={},
        form_uid="f",
        export_type="xml",
        subset_fields=tags,
        payload_template=None,
    )
    return body


def odk_subset_xml(tags: list[str]) -> tuple[bytes, str]:
    return build_payload(
        content_type="application/xml",
        body=ODK_XML,
        data=xml_to_json(parse_xml(ODK_XML)),
        form_uid="f",
        export_type="xml",
        subset_fields=tags,
        payload_template=None,
    )


# --------------------------------------------------------------------------
# Subsets (the README's examples)
# --------------------------------------------------------------------------

EXAMPLE_FLAT = {
    "q1": "top",
    "group1/q2": "a",
    "group1/q3": "b",
    "group2/subgroup1/q4": "c",
    "group2/subgroup1/q5": "d",
    "group2/subgroup11/q1": "e",
    "group2/q3": "f",
}


EXAMPLE_NESTED = {
    "q1": "top",
    "group1": {"q2": "a", "q3": "b"},
    "group2": {"subgroup1": {"q4": "c", "q5": "d"}, "subgroup11": {"q1": "e"}, "q3": "f"},
}


EXAMPLE_XML = (
    b'<?xml version="1.0"?>\n<form xmlns:jr="http://openrosa.org/javarosa" id="spec" version="3">'
    b"<q1>top</q1><group1><q2>a</q2><q3>b</q3></group1>"
    b'<group2 jr:note="g"><subgroup1><q4>c</q4><q5>d</q5></subgroup1>'
    b"<subgroup11><q1>e</q1></subgroup11><q3>f</q3></group2></form>"
)


EXAMPLE_XML_ROOT = (
    b'<form xmlns:jr="http://openrosa.org/javarosa" id="spec" version="3"'  # prefix kept
)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["q3"], {"group1/q3": "b", "group2/q3": "f"}),
        (["subgroup1"], {"group2/subgroup1/q4": "c", "group2/subgroup1/q5": "d"}),
        (["group2/subgroup1"], {"group2/subgroup1/q4": "c", "group2/subgroup1/q5": "d"}),
        (["group2/subgroup1/q4"], {"group2/subgroup1/q4": "c"}),
        (["group1/q3"], {"group1/q3": "b"}),
        (["group1"], {"group1/q2": "a", "group1/q3": "b"}),
        (["q1"], {"q1": "top", "group2/subgroup11/q1": "e"}),
        (["subgroup"], {}),
        (["group2/subgroup"], {}),
        (["subgroup1/q4"], {}),  # a path tag is an exact path from the root
        (["q5", "q2", "q5"], {"group1/q2": "a", "group2/subgroup1/q5": "d"}),
    ],
)
def test_subset_json_flat_examples(tags, expected):
    result = select_subset_json(EXAMPLE_FLAT, tags)
    assert result == expected
    assert list(result) == [key for key in EXAMPLE_FLAT if key in expected]  # order kept


def test_subset_json_nested_keeps_structure_and_ancestors():
    assert select_subset_json(EXAMPLE_NESTED, ["subgroup1"]) == {
        "group2": {"subgroup1": {"q4": "c", "q5": "d"}}
    }
    assert select_subset_json(EXAMPLE_NESTED, ["q3"]) == {
        "group1": {"q3": "b"},
        "group2": {"q3": "f"},
    }
    assert select_subset_json(EXAMPLE_NESTED, ["group2/subgroup1/q4", "q1"]) == {
        "q1": "top",
        "group2": {"subgroup1": {"q4": "c"}, "subgroup11": {"q1": "e"}},
    }
    # A selected group is its whole (shared, not copied) subtree.
    result = select_subset_json(EXAMPLE_NESTED, ["group1"])
    assert result == {"group1": {"q2": "a", "q3": "b"}}
    assert result["group1"] is EXAMPLE_NESTED["group1"]


def test_subset_json_mixed_flat_and_nested_paths_are_the_same():
    data = {"group2/subgroup1/q4": "c", "group2": {"subgroup1": {"q5": "d"}, "q3": "f"}}
    assert select_subset_json(data, ["group2/subgroup1"]) == {
        "group2/subgroup1/q4": "c",
        "group2": {"subgroup1": {"q5": "d"}},
    }


def test_subset_json_repeats():
    data = {
        "crop_repeat": [
            {
                "crop_repeat/crop_name": "maize",
                "crop_repeat/pests": [
                    {"crop_repeat/pests/name": "aphid", "crop_repeat/pests/severity": "low"}
                ],
            },
            {"crop_repeat/crop_name": "sorghum", "crop_repeat/pests": []},
            {"crop_name": "rice", "pests": [{"name": "borer", "severity": "high"}]},
        ],
        "name": "top",
    }
    assert select_subset_json(data, ["crop_repeat/pests/severity"]) == {
        "crop_repeat": [
            {"crop_repeat/pests": [{"crop_repeat/pests/severity": "low"}]},
            {"pests": [{"severity": "high"}]},
        ]
    }
    assert select_subset_json(data, ["crop_repeat/crop_name"]) == {
        "crop_repeat": [
            {"crop_repeat/crop_name": "maize"},
            {"crop_repeat/crop_name": "sorghum"},
            {"crop_name": "rice"},
        ]
    }
    # "pests" brings the whole list (even an empty one) as it is.
    assert select_subset_json(data, ["pests"]) == {
        "crop_repeat": [
            {"crop_repeat/pests": data["crop_repeat"][0]["crop_repeat/pests"]},
            {"crop_repeat/pests": []},
            {"pests": [{"name": "borer", "severity": "high"}]},
        ]
    }
    assert select_subset_json(data, ["crop_repeat"]) == {"crop_repeat": data["crop_repeat"]}
    assert select_subset_json(data, ["name"]) == {
        "crop_repeat": [
            {"crop_repeat/pests": [{"crop_repeat/pests/name": "aphid"}]},
            {"pests": [{"name": "borer"}]},
        ],
        "name": "top",
    }


def test_subset_json_kobo_and_nested_fixtures():
    assert select_subset_json(kobo(), SUBSET) == {
        "_id": 48213,
        "household/water/source": "borehole",
        "household/water/distance_m": "350",
        "crop_repeat": [{"crop_repeat/crop_name": "maize"}, {"crop_repeat/crop_name": "sorghum"}],
        "meta/instanceID": "uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18",
    }
    assert select_subset_json(nested(), ["crop_repeat/crop_name", "consent", "notes"]) == {
        "crop_repeat": [{"crop_name": "cassava"}],
        "consent": True,
        "notes": None,
    }


def test_subset_json_empty_tags_is_identity():
    data = kobo()
    assert select_subset_json(data, []) is data


def test_subset_xml_examples():
    root = EXAMPLE_XML_ROOT + b">"
    assert subset_xml(["q3"]) == (
        XML_DECL + root + b"<group1><q3>b</q3></group1>"
        b'<group2 jr:note="g"><q3>f</q3></group2></form>'
    )
    assert subset_xml(["subgroup1"]) == (
        XML_DECL + root + b'<group2 jr:note="g"><subgroup1><q4>c</q4><q5>d</q5></subgroup1>'
        b"</group2></form>"
    )
    assert subset_xml(["group2/subgroup1"]) == subset_xml(["subgroup1"])
    assert (
        subset_xml(["group1"]) == XML_DECL + root + b"<group1><q2>a</q2><q3>b</q3></group1></form>"
    )
    assert subset_xml(["q1"]) == (
        XML_DECL + root + b'<q1>top</q1><group2 jr:note="g"><subgroup11><q1>e</q1></subgroup11>'
        b"</group2></form>"
    )
    # Nothing selected: the root element (with its attributes) is still sent.
    assert subset_xml(["nothing"]) == XML_DECL + EXAMPLE_XML_ROOT + b" />"


def test_select_subset_xml_returns_new_tree_and_keeps_input():
    root = parse_xml(EXAMPLE_XML)
    before = ET.tostring(root)
    result = select_subset_xml(root, ["q4"])
    assert result is not root
    assert result.attrib == {"id": "spec", "version": "3"}
    assert ET.tostring(root) == before
    assert xml_to_json(result) == {"group2/subgroup1/q4": "c"}
    assert select_subset_xml(root, []) is root


def test_subset_xml_odk_fixture_exact():
    body, content_type = odk_subset_xml(SUBSET)
    assert content_type == "application/xml"
    assert body == (
        XML_DECL
        + b'<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms"'
        b' id="household_survey" version="2026112001">\n'
        b"  <household>\n"
        b"    <water>\n"
        b"      <source>borehole</source>\n"
        b"      <distance_m>350</distance_m>\n"
        b"    </water>\n"
        b"  </household>\n"
        b"  <crop_repeat>\n"
        b"    <crop_name>maize</crop_name>\n"
        b"  </crop_repeat>\n"
        b"  <crop_repeat>\n"
        b"    <crop_name>sorghum</crop_name>\n"
        b"  </crop_repeat>\n"
        b"  <meta>\n"
        b"    <instanceID>uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35</instanceID>\n"
        b"  </meta>\n"
        b"</data>"
    )


def test_subset_xml_keeps_escapes_non_ascii_and_namespaces():
    body, _ = odk_subset_xml(["comments", "head_name"])
    assert COMMENTS_XML.encode() in body
    assert "Aïssatou Diallo".encode() in body
    root = parse_xml(body)
    assert root.findtext("comments") == COMMENTS
    source = (
        b'<d xmlns="http://www.w3.org/2002/xforms" xmlns:orx="http://openrosa.org/xforms" id="x">'
        b'<g><q xml:lang="fr">1</q><r>2</r></g>'
        b"<orx:meta><orx:instanceID>u</orx:instanceID></orx:meta></d>"
    )
    body, _ = build_payload(
        content_type="application/xml",
        body=source,
        data={},
        form_uid="f",
        export_type="xml",
        subset_fields=["q", "instanceID"],
        payload_template=None,
    )
    assert body == (
        XML_DECL
        + b'<d xmlns="http://www.w3.org/2002/xforms" xmlns:orx="http://openrosa.org/xforms"'
        b' id="x"><g><q xml:lang="fr">1</q></g>'
        b"<orx:meta><orx:instanceID>u</orx:instanceID></orx:meta></d>"
    )


# --------------------------------------------------------------------------
# Validation of the setting
# --------------------------------------------------------------------------


def subset_messages(tags) -> list[str]:
    """validate_subset_fields() as the API words it."""
    return [problem.message() for problem in validate_subset_fields(tags)]


def test_validate_subset_fields():
    assert validate_subset_fields([]) == []
    assert subset_messages(["q3", "group2/subgroup1", "_id", "meta/instanceID", "q3"]) == []
    assert subset_messages("q3") == ["Subset fields must be a list of strings."]
    assert subset_messages(None) == ["Subset fields must be a list of strings."]
    errors = subset_messages([1, "", "a b", "/a", "a/", "a//b", "x" * 256, "ok", "x" * 255])
    assert errors == [
        "Subset field #1 must be a string.",
        "Subset field #2 is empty.",
        "Subset field 'a b' must not contain whitespace.",
        "Subset fields '/a', 'a/' must not start or end with '/'.",
        "Subset field 'a//b' must not contain '//'.",
        "Subset field #7 is too long (at most 255 characters).",
    ]
    assert subset_messages([f"q{i}" for i in range(500)]) == []
    assert subset_messages([f"q{i}" for i in range(501)]) == [
        "At most 500 subset fields are allowed (501 given)."
    ]


def test_subset_problems_name_three_tags_and_count_the_rest():
    problems = validate_subset_fields(["a b", "c d", "e f", "g h", "i j", "/x"])
    assert [(p.field, p.code, dict(p.params)) for p in problems] == [
        (
            "subset_fields",
            "subset.space.more",
            {"tags": "'a b', 'c d', 'e f'", "more": 2, "most": 255},
        ),
        ("subset_fields", "subset.slash.one", {"tags": "'/x'", "most": 255}),
    ]


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(data=json_objects)
def test_property_empty_subset_is_identity(data):
    assert select_subset_json(data, []) is data
    assert select_subset_json(data, []) == data


@settings(max_examples=100, deadline=None)
@given(
    data=st.dictionaries(path_keys, subset_values, max_size=6),
    tags=st.lists(st.text(alphabet="ab/c", min_size=1, max_size=5), max_size=3),
)
def test_property_json_and_xml_subsets_agree(data, tags):
    subset = select_subset_json(data, tags)
    assert select_subset_json(subset, tags) == subset
    from_json = xml_to_json(parse_xml(json_to_xml(subset, "f")))
    from_xml = xml_to_json(select_subset_xml(parse_xml(json_to_xml(data, "f")), tags))
    assert from_json == from_xml
