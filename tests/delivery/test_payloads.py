"""Tests for webapp.delivery.payloads: what a hook sends (SPEC §5)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.delivery.payloads import (
    MAX_XML_DEPTH,
    PLACEHOLDER,
    PayloadError,
    XMLInputError,
    apply_payload_template,
    build_payload,
    json_to_xml,
    parse_xml,
    select_subset_json,
    select_subset_xml,
    validate_payload_template,
    validate_subset_fields,
    xml_to_json,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FORM_UID = "aZ7kqP3wXbLmN2vR8tYs5d"
XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
COMMENTS = "Puits à réparer; <urgent> & à suivre"
COMMENTS_XML = "Puits à réparer; &lt;urgent&gt; &amp; à suivre"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


ODK_XML = fixture_bytes("odk_instance.xml")
KOBO_BODY = fixture_bytes("kobo_flat.json")
NESTED_BODY = fixture_bytes("nested.json")
WEBFORM_BODY = fixture_bytes("webform.urlencoded")

# The exact KoboToolbox-style JSON of odk_instance.xml.
ODK_JSON = {
    "start": "2026-11-20T09:14:03.512+01:00",
    "end": "2026-11-20T09:21:47.020+01:00",
    "household/head_name": "Aïssatou Diallo",
    "household/members": "6",
    "household/water/source": "borehole",
    "household/water/distance_m": "350",
    "crop_repeat": [
        {"crop_repeat/crop_name": "maize", "crop_repeat/area_ha": "1.5"},
        {"crop_repeat/crop_name": "sorghum", "crop_repeat/area_ha": "0.75"},
    ],
    "location": "12.6392 -8.0029 312 5",
    "comments": COMMENTS,
    "meta/instanceID": "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35",
    "meta/instanceName": "Diallo 2026-11-20",
}

# The exact XML of kobo_flat.json with the form uid as root.
KOBO_XML = (
    XML_DECL.decode() + f'<{FORM_UID} id="{FORM_UID}">'
    "<_id>48213</_id>"
    "<formhub><uuid>a81b6f02c4d94b8e9e7c2f1d0b3a6e55</uuid></formhub>"
    "<start>2026-11-20T09:14:03.512+01:00</start>"
    "<end>2026-11-20T09:21:47.020+01:00</end>"
    "<today>2026-11-20</today>"
    "<household><head_name>Aïssatou Diallo</head_name><members>6</members>"
    "<water><source>borehole</source><distance_m>350</distance_m></water></household>"
    "<crops>maize sorghum</crops>"
    "<crop_repeat><crop_name>maize</crop_name><area_ha>1.5</area_ha></crop_repeat>"
    "<crop_repeat><crop_name>sorghum</crop_name><area_ha>0.75</area_ha></crop_repeat>"
    "<location>12.6392 -8.0029 312 5</location>"
    "<photo>IMG_20261120_091812.jpg</photo>"
    f"<comments>{COMMENTS_XML}</comments>"
    "<__version__>vQ7zgU9dCkXv4NQFh6sYpC</__version__>"
    "<meta><instanceID>uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</instanceID></meta>"
    "<_xform_id_string>aZ7kqP3wXbLmN2vR8tYs5d</_xform_id_string>"
    "<_uuid>3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</_uuid>"
    "<_attachments><mimetype>image/jpeg</mimetype>"
    "<filename>enumerator/attachments/IMG_20261120_091812.jpg</filename>"
    "<instance>48213</instance><xform>911</xform></_attachments>"
    "<_status>submitted_via_web</_status>"
    "<_geolocation>12.6392</_geolocation><_geolocation>-8.0029</_geolocation>"
    "<_submission_time>2026-11-20T08:22:05</_submission_time>"
    "<_validation_status />"
    "<_submitted_by>enumerator</_submitted_by>"
    f"</{FORM_UID}>"
).encode()

NESTED_XML = (
    XML_DECL + b'<nF0rm id="nF0rm">'
    b"<household><head_name>Kofi Mensah</head_name><members>4</members>"
    b"<water><source>piped</source><distance_m>20</distance_m></water></household>"
    b"<crop_repeat><crop_name>cassava</crop_name><area_ha>2.0</area_ha></crop_repeat>"
    b"<consent>true</consent><score>7.5</score><notes />"
    b"<meta><instanceID>uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64</instanceID></meta>"
    b"</nF0rm>"
)

SUBSET = ["household/water", "crop_name", "meta/instanceID", "_id"]


def kobo() -> dict:
    return json.loads(KOBO_BODY)


def nested() -> dict:
    return json.loads(NESTED_BODY)


def webform() -> dict:
    """The object an urlencoded post becomes (a repeated key -> a list)."""
    data: dict = {}
    for key, value in parse_qsl(WEBFORM_BODY.decode().strip()):
        if key in data:
            previous = data[key]
            data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[key] = value
    return data


def build(**kwargs) -> tuple[bytes, str]:
    args = {"form_uid": FORM_UID, "subset_fields": [], "payload_template": None, **kwargs}
    return build_payload(**args)


def from_odk(**kwargs) -> tuple[bytes, str]:
    return build(source_format="xml", body=ODK_XML, data=xml_to_json(parse_xml(ODK_XML)), **kwargs)


# --------------------------------------------------------------------------
# XML -> JSON
# --------------------------------------------------------------------------


def test_fixtures_are_local_copies():
    assert ODK_XML.startswith(b"<?xml") and b"household_survey" in ODK_XML
    assert kobo()["_id"] == 48213


def test_xml_to_json_odk_instance_exact():
    data = xml_to_json(parse_xml(ODK_XML))
    assert data == ODK_JSON
    assert list(data) == list(ODK_JSON)  # document order


def test_xml_to_json_nested_repeats_namespaces_and_edge_cases():
    root = parse_xml(
        b'<f xmlns:orx="http://openrosa.org/xforms" id="f">'
        b"<crop><name>maize</name><pest><p>aphid</p></pest><pest><p>borer</p></pest></crop>"
        b"<crop><name>rice</name></crop>"
        b"<empty/><blank></blank><tag>a</tag><tag>b</tag>"
        b"<once><x>1</x></once>"
        b"<orx:meta><orx:instanceID>uuid:1</orx:instanceID></orx:meta>"
        b"</f>"
    )
    assert xml_to_json(root) == {
        "crop": [
            {
                "crop/name": "maize",
                "crop/pest": [{"crop/pest/p": "aphid"}, {"crop/pest/p": "borer"}],
            },
            {"crop/name": "rice"},
        ],
        "empty": "",
        "blank": "",
        "tag": ["a", "b"],
        "once/x": "1",  # a single repeat instance looks like a group
        "meta/instanceID": "uuid:1",
    }


def test_xml_json_xml_round_trip_of_odk_instance():
    again = xml_to_json(parse_xml(json_to_xml(ODK_JSON, "data")))
    assert again == ODK_JSON


# --------------------------------------------------------------------------
# JSON -> XML
# --------------------------------------------------------------------------


def test_json_to_xml_kobo_flat_exact():
    assert json_to_xml(kobo(), FORM_UID) == KOBO_XML


def test_json_to_xml_nested_exact():
    assert json_to_xml(nested(), "nF0rm") == NESTED_XML


def test_json_to_xml_merges_flat_and_nested_and_relative_repeat_keys():
    data = {
        "household/head_name": "A",
        "other": "x",
        "household": {"water": {"source": "well"}},
        "household/water/distance_m": 3,
        "crop": [
            {"crop/name": "maize", "area": 1, "crop/pest": [{"crop/pest/p": "aphid"}]},
            {"name": "rice", "pest": [{"p": "borer"}]},
        ],
    }
    assert json_to_xml(data, "f") == (
        XML_DECL + b'<f id="f"><household><head_name>A</head_name>'
        b"<water><source>well</source><distance_m>3</distance_m></water></household>"
        b"<other>x</other>"
        b"<crop><name>maize</name><area>1</area><pest><p>aphid</p></pest></crop>"
        b"<crop><name>rice</name><pest><p>borer</p></pest></crop></f>"
    )


def test_json_to_xml_scalars():
    data = {
        "none": None,
        "t": True,
        "f": False,
        "i": -3,
        "big": 10**20,
        "x": 0.1,
        "e": 1e100,
        "s": "",
        "empty_obj": {},
        "empty_list": [],
        "g/empty_list": [],
        "scalars": ["a", 1, None],
    }
    assert json_to_xml(data, "r") == (
        XML_DECL + b'<r id="r"><none /><t>true</t><f>false</f><i>-3</i>'
        b"<big>100000000000000000000</big><x>0.1</x><e>1e+100</e><s /><empty_obj />"
        b"<scalars>a</scalars><scalars>1</scalars><scalars /></r>"
    )


def test_json_to_xml_sanitizes_names():
    data = {
        "1st": "a",
        "my field": "b",
        "xmlThing": "c",
        "-dash": "d",
        ".dot": "e",
        "ns:q": "f",
        "été": "g",
        "": "h",
        "😀": "i",
        "a//b/": "j",
    }
    out = json_to_xml(data, "9form")
    assert (
        out
        == (
            XML_DECL.decode() + '<_9form id="9form"><_1st>a</_1st><my_field>b</my_field>'
            "<_xmlThing>c</_xmlThing><_-dash>d</_-dash><_.dot>e</_.dot><ns_q>f</ns_q>"
            "<été>g</été><_>h</_><_>i</_><a><b>j</b></a></_9form>"
        ).encode()
    )
    assert parse_xml(out).tag == "_9form"


def test_json_to_xml_escapes_and_unencodable_characters():
    data = {
        "c": COMMENTS,
        "q": "he said \"hi\" ]]> 'ok'",
        "ctl": "a\x00b\x1fc\r\nd",
        "sur": "\ud800x",
    }
    out = json_to_xml(data, "f")
    assert COMMENTS_XML.encode() in out
    root = parse_xml(out)
    assert root.findtext("c") == COMMENTS
    assert root.findtext("q") == "he said \"hi\" ]]> 'ok'"
    assert root.findtext("ctl") == "a\ufffdb\ufffdc\r\nd"  # \r survives as &#13;
    assert root.findtext("sur") == "\ufffdx"


def test_json_to_xml_requires_an_object():
    with pytest.raises(TypeError):
        json_to_xml(["a"], "f")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Subsets (SPEC §5 examples)
# --------------------------------------------------------------------------

SPEC_FLAT = {
    "q1": "top",
    "group1/q2": "a",
    "group1/q3": "b",
    "group2/subgroup1/q4": "c",
    "group2/subgroup1/q5": "d",
    "group2/subgroup11/q1": "e",
    "group2/q3": "f",
}
SPEC_NESTED = {
    "q1": "top",
    "group1": {"q2": "a", "q3": "b"},
    "group2": {"subgroup1": {"q4": "c", "q5": "d"}, "subgroup11": {"q1": "e"}, "q3": "f"},
}
SPEC_XML = (
    b'<?xml version="1.0"?>\n<form xmlns:jr="http://openrosa.org/javarosa" id="spec" version="3">'
    b"<q1>top</q1><group1><q2>a</q2><q3>b</q3></group1>"
    b'<group2 jr:note="g"><subgroup1><q4>c</q4><q5>d</q5></subgroup1>'
    b"<subgroup11><q1>e</q1></subgroup11><q3>f</q3></group2></form>"
)
SPEC_XML_ROOT = (
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
def test_subset_json_flat_spec_examples(tags, expected):
    result = select_subset_json(SPEC_FLAT, tags)
    assert result == expected
    assert list(result) == [key for key in SPEC_FLAT if key in expected]  # order kept


def test_subset_json_nested_keeps_structure_and_ancestors():
    assert select_subset_json(SPEC_NESTED, ["subgroup1"]) == {
        "group2": {"subgroup1": {"q4": "c", "q5": "d"}}
    }
    assert select_subset_json(SPEC_NESTED, ["q3"]) == {
        "group1": {"q3": "b"},
        "group2": {"q3": "f"},
    }
    assert select_subset_json(SPEC_NESTED, ["group2/subgroup1/q4", "q1"]) == {
        "q1": "top",
        "group2": {"subgroup1": {"q4": "c"}, "subgroup11": {"q1": "e"}},
    }
    # A selected group is its whole (shared, not copied) subtree.
    result = select_subset_json(SPEC_NESTED, ["group1"])
    assert result == {"group1": {"q2": "a", "q3": "b"}}
    assert result["group1"] is SPEC_NESTED["group1"]


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


def subset_xml(tags: list[str]) -> bytes:
    body, _ = build(
        source_format="xml", body=SPEC_XML, data={}, export_type="xml", subset_fields=tags
    )
    return body


def test_subset_xml_spec_examples():
    root = SPEC_XML_ROOT + b">"
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
    assert subset_xml(["nothing"]) == XML_DECL + SPEC_XML_ROOT + b" />"


def test_select_subset_xml_returns_new_tree_and_keeps_input():
    root = parse_xml(SPEC_XML)
    before = ET.tostring(root)
    result = select_subset_xml(root, ["q4"])
    assert result is not root
    assert result.attrib == {"id": "spec", "version": "3"}
    assert ET.tostring(root) == before
    assert xml_to_json(result) == {"group2/subgroup1/q4": "c"}
    assert select_subset_xml(root, []) is root


def test_subset_xml_odk_fixture_exact():
    body, content_type = from_odk(export_type="xml", subset_fields=SUBSET)
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
    body, _ = from_odk(export_type="xml", subset_fields=["comments", "head_name"])
    assert COMMENTS_XML.encode() in body
    assert "Aïssatou Diallo".encode() in body
    root = parse_xml(body)
    assert root.findtext("comments") == COMMENTS
    source = (
        b'<d xmlns="http://www.w3.org/2002/xforms" xmlns:orx="http://openrosa.org/xforms" id="x">'
        b'<g><q xml:lang="fr">1</q><r>2</r></g>'
        b"<orx:meta><orx:instanceID>u</orx:instanceID></orx:meta></d>"
    )
    body, _ = build(
        source_format="xml",
        body=source,
        data={},
        export_type="xml",
        subset_fields=["q", "instanceID"],
    )
    assert body == (
        XML_DECL
        + b'<d xmlns="http://www.w3.org/2002/xforms" xmlns:orx="http://openrosa.org/xforms"'
        b' id="x"><g><q xml:lang="fr">1</q></g>'
        b"<orx:meta><orx:instanceID>u</orx:instanceID></orx:meta></d>"
    )


# --------------------------------------------------------------------------
# build_payload: every fixture through every path
# --------------------------------------------------------------------------

ODK_JSON_BYTES = json.dumps(ODK_JSON, ensure_ascii=False, separators=(",", ":")).encode()


def test_odk_xml_to_xml_is_the_body_as_received():
    body, content_type = from_odk(export_type="xml")
    assert body == ODK_XML
    assert content_type == "application/xml"


def test_odk_xml_to_json():
    body, content_type = from_odk(export_type="json")
    assert content_type == "application/json"
    assert body == ODK_JSON_BYTES
    assert json.loads(body) == ODK_JSON
    assert COMMENTS.encode() in body  # raw UTF-8, nothing escaped


def test_odk_xml_to_json_subset_exact():
    body, _ = from_odk(export_type="json", subset_fields=SUBSET)
    assert body == (
        b'{"household/water/source":"borehole","household/water/distance_m":"350",'
        b'"crop_repeat":[{"crop_repeat/crop_name":"maize"},{"crop_repeat/crop_name":"sorghum"}],'
        b'"meta/instanceID":"uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"}'
    )


def test_odk_xml_to_json_with_template():
    template = '{"form": "household", "submission": %SUBMISSION%, "again": [%SUBMISSION%]}'
    body, content_type = from_odk(export_type="json", payload_template=template)
    assert content_type == "application/json"
    text = ODK_JSON_BYTES.decode()
    assert body == f'{{"form": "household", "submission": {text}, "again": [{text}]}}'.encode()
    body, _ = from_odk(
        export_type="json", subset_fields=["instanceName"], payload_template=template
    )
    assert json.loads(body) == {
        "form": "household",
        "submission": {"meta/instanceName": "Diallo 2026-11-20"},
        "again": [{"meta/instanceName": "Diallo 2026-11-20"}],
    }


@pytest.mark.parametrize("source", ["odk", "kobo"])
def test_template_with_xml_export_is_refused(source):
    with pytest.raises(PayloadError, match="only be used with the JSON format"):
        if source == "odk":
            from_odk(export_type="xml", payload_template='{"a": %SUBMISSION%}')
        else:
            build(
                source_format="json",
                body=KOBO_BODY,
                data=kobo(),
                export_type="xml",
                payload_template="{}",
            )


def test_kobo_json_to_json_is_the_body_as_received():
    body, content_type = build(
        source_format="json", body=KOBO_BODY, data=kobo(), export_type="json"
    )
    assert body == KOBO_BODY
    assert content_type == "application/json"


def test_kobo_json_to_json_subset_exact():
    body, _ = build(
        source_format="json", body=KOBO_BODY, data=kobo(), export_type="json", subset_fields=SUBSET
    )
    assert body == (
        b'{"_id":48213,"household/water/source":"borehole","household/water/distance_m":"350",'
        b'"crop_repeat":[{"crop_repeat/crop_name":"maize"},{"crop_repeat/crop_name":"sorghum"}],'
        b'"meta/instanceID":"uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18"}'
    )


def test_kobo_json_with_template():
    body, _ = build(
        source_format="json",
        body=KOBO_BODY,
        data=kobo(),
        export_type="json",
        subset_fields=["comments"],
        payload_template='{"event": "submission", "data": %SUBMISSION%}',
    )
    assert body == f'{{"event": "submission", "data": {{"comments":"{COMMENTS}"}}}}'.encode()


def test_kobo_json_to_xml_exact():
    body, content_type = build(source_format="json", body=KOBO_BODY, data=kobo(), export_type="xml")
    assert body == KOBO_XML
    assert content_type == "application/xml"


def test_kobo_json_to_xml_subset_exact():
    body, _ = build(
        source_format="json", body=KOBO_BODY, data=kobo(), export_type="xml", subset_fields=SUBSET
    )
    assert (
        body
        == (
            XML_DECL.decode() + f'<{FORM_UID} id="{FORM_UID}"><_id>48213</_id>'
            "<household><water><source>borehole</source><distance_m>350</distance_m></water></household>"
            "<crop_repeat><crop_name>maize</crop_name></crop_repeat>"
            "<crop_repeat><crop_name>sorghum</crop_name></crop_repeat>"
            "<meta><instanceID>uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18</instanceID></meta>"
            f"</{FORM_UID}>"
        ).encode()
    )


def test_nested_json_every_path():
    def nested_build(**kwargs):
        return build(
            source_format="json", body=NESTED_BODY, data=nested(), form_uid="nF0rm", **kwargs
        )

    assert nested_build(export_type="json") == (NESTED_BODY, "application/json")
    assert nested_build(export_type="json", subset_fields=SUBSET)[0] == (
        b'{"household":{"water":{"source":"piped","distance_m":20}},'
        b'"crop_repeat":[{"crop_name":"cassava"}],'
        b'"meta":{"instanceID":"uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"}}'
    )
    assert nested_build(export_type="json", payload_template='{"s": %SUBMISSION%}')[0] == (
        b'{"s": {"household":{"head_name":"Kofi Mensah","members":4,'
        b'"water":{"source":"piped","distance_m":20}},'
        b'"crop_repeat":[{"crop_name":"cassava","area_ha":2.0}],"consent":true,"score":7.5,'
        b'"notes":null,"meta":{"instanceID":"uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"}}}'
    )
    assert nested_build(export_type="xml") == (NESTED_XML, "application/xml")
    assert nested_build(export_type="xml", subset_fields=SUBSET)[0] == (
        XML_DECL + b'<nF0rm id="nF0rm">'
        b"<household><water><source>piped</source><distance_m>20</distance_m></water></household>"
        b"<crop_repeat><crop_name>cassava</crop_name></crop_repeat>"
        b"<meta><instanceID>uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64</instanceID></meta></nF0rm>"
    )


def test_webform_urlencoded_every_path():
    data = webform()
    assert data["needs"] == ["shelter", "water"]

    def web_build(**kwargs):
        return build(source_format="json", body=WEBFORM_BODY, data=data, form_uid="web1", **kwargs)

    # The body is not JSON: the object is sent.
    assert (
        web_build(export_type="json")[0]
        == (
            '{"name":"Nadia Haddad","email":"nadia@example.org","district":"Bekaa",'
            '"needs":["shelter","water"],"message":"Besoin d\'aide à Zahlé"}'
        ).encode()
    )
    assert (
        web_build(export_type="json", subset_fields=["needs"])[0]
        == b'{"needs":["shelter","water"]}'
    )
    assert web_build(export_type="json", payload_template="[%SUBMISSION%]")[0].startswith(
        b'[{"name"'
    )
    assert (
        web_build(export_type="xml")[0]
        == (
            XML_DECL.decode()
            + '<web1 id="web1"><name>Nadia Haddad</name><email>nadia@example.org</email>'
            "<district>Bekaa</district><needs>shelter</needs><needs>water</needs>"
            "<message>Besoin d'aide à Zahlé</message></web1>"
        ).encode()
    )
    assert web_build(export_type="xml", subset_fields=["email"])[0] == (
        XML_DECL + b'<web1 id="web1"><email>nadia@example.org</email></web1>'
    )


def test_json_body_that_is_not_an_object_is_not_sent_as_is():
    body, _ = build(source_format="json", body=b"[1, 2]", data={"a": 1}, export_type="json")
    assert body == b'{"a":1}'


def test_lone_surrogates_still_give_valid_utf8_json():
    body, _ = build(source_format="xml", body=b"<a/>", data={"s": "\ud800"}, export_type="json")
    assert body == b'{"s":"\\ud800"}'
    assert apply_payload_template("[%SUBMISSION%]", {"s": "\udfff"}) == b'[{"s":"\\udfff"}]'


def test_build_payload_failures_are_payload_errors():
    bad_xml = b"<data><a>1</b></data>"
    with pytest.raises(PayloadError, match="mismatched tag") as excinfo:
        build(source_format="xml", body=bad_xml, data={}, export_type="xml", subset_fields=["a"])
    assert isinstance(excinfo.value, ValueError)
    # Without a subset the stored XML is sent as received, unparsed.
    assert build(source_format="xml", body=bad_xml, data={}, export_type="xml")[0] == bad_xml
    with pytest.raises(PayloadError, match="Unknown export type"):
        build(source_format="json", body=b"{}", data={}, export_type="csv")
    with pytest.raises(PayloadError, match="Unknown submission format"):
        build(source_format="yaml", body=b"{}", data={}, export_type="json")
    with pytest.raises(PayloadError, match="not a JSON object"):
        build(source_format="json", body=b"", data=["x"], export_type="xml")
    with pytest.raises(PayloadError):
        build(source_format="json", body=b"", data={"a": object()}, export_type="json")
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(PayloadError, match="nested too deeply"):
        build(source_format="json", body=b"", data=deep, export_type="xml")


def test_whitespace_template_counts_as_none():
    body, _ = build(
        source_format="json",
        body=KOBO_BODY,
        data=kobo(),
        export_type="json",
        payload_template="  \n",
    )
    assert body == KOBO_BODY
    assert build(source_format="json", body=b"", data={}, export_type="xml", payload_template="")[
        0
    ] == (XML_DECL + f'<{FORM_UID} id="{FORM_UID}" />'.encode())


# --------------------------------------------------------------------------
# Validation of hook settings
# --------------------------------------------------------------------------


def test_validate_subset_fields():
    assert validate_subset_fields([]) == []
    assert validate_subset_fields(["q3", "group2/subgroup1", "_id", "meta/instanceID", "q3"]) == []
    assert validate_subset_fields("q3") == ["Subset fields must be a list of strings."]
    assert validate_subset_fields(None) == ["Subset fields must be a list of strings."]
    errors = validate_subset_fields([1, "", "a b", "/a", "a/", "a//b", "x" * 256, "ok", "x" * 255])
    assert errors == [
        "Subset field #1 must be a string.",
        "Subset field #2 is empty.",
        "Subset field 'a b' must not contain whitespace.",
        "Subset fields '/a', 'a/' must not start or end with '/'.",
        "Subset field 'a//b' must not contain '//'.",
        "Subset field #7 is too long (at most 255 characters).",
    ]
    assert validate_subset_fields([f"q{i}" for i in range(500)]) == []
    assert validate_subset_fields([f"q{i}" for i in range(501)]) == [
        "At most 500 subset fields are allowed (501 given)."
    ]


@pytest.mark.parametrize(
    "template",
    [
        None,
        "",
        "   ",
        '{"data": %SUBMISSION%}',
        '{"a": [%SUBMISSION%, %SUBMISSION%], "b": "%"}',
        PLACEHOLDER,
        '{"fixed": true}',
        '{\n  "event": "new",\n  "submission": %SUBMISSION%\n}',
    ],
)
def test_valid_templates(template):
    assert validate_payload_template(template, "json") == []


def test_invalid_json_template_says_where():
    [error] = validate_payload_template('{"data": %SUBMISSION%', "json")
    assert "not valid JSON" in error
    assert "Expecting ',' delimiter at line 1, column 22" in error
    [error] = validate_payload_template('{\n  "a": %SUBMISSION%,\n  "b": x\n}', "json")
    assert "Expecting value at line 3, column 8" in error
    assert validate_payload_template("{{%SUBMISSION%}}", "json") != []
    assert validate_payload_template("not json", "json") != []


def test_template_placeholder_inside_a_string_is_refused():
    [error] = validate_payload_template('{"data": "%SUBMISSION%"}', "json")
    assert "inside a JSON string" in error
    assert validate_payload_template('{"data": "before %SUBMISSION% after"}', "json") != []


def test_template_with_xml_format_is_refused():
    assert validate_payload_template('{"data": %SUBMISSION%}', "xml") == [
        "A custom wrapper can only be used with the JSON format."
    ]
    assert validate_payload_template("", "xml") == []
    assert validate_payload_template(None, "xml") == []


def test_template_too_long_or_not_a_string():
    too_long = '{"a": "' + "x" * 65536 + '"}'
    assert validate_payload_template(too_long, "json") == [
        "The custom wrapper is too long (at most 65536 characters)."
    ]
    assert validate_payload_template(42, "json") == ["The custom wrapper must be a string."]  # type: ignore[arg-type]


def test_apply_payload_template():
    submission = {"a": "é<&>", "n": [1, None]}
    assert apply_payload_template('{"x": %SUBMISSION%, "y": %SUBMISSION%}', submission) == (
        '{"x": {"a":"é<&>","n":[1,null]}, "y": {"a":"é<&>","n":[1,null]}}'.encode()
    )
    assert apply_payload_template('{"fixed": 1}', submission) == b'{"fixed": 1}'


# --------------------------------------------------------------------------
# Hostile XML
# --------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><d>&xxe;</d>'
)
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://example.org/evil.dtd"><d/>'


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_dtds_and_entities_are_refused(body):
    with pytest.raises(XMLInputError, match="DOCTYPE"):
        parse_xml(body)


def test_deep_nesting_is_refused_cleanly():
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    with pytest.raises(XMLInputError, match="nested too deeply"):
        parse_xml(deep)
    limit = MAX_XML_DEPTH
    assert parse_xml(b"<a>" * limit + b"</a>" * limit).tag == "a"
    with pytest.raises(XMLInputError, match="more than 100 levels"):
        parse_xml(b"<a>" * (limit + 1) + b"</a>" * (limit + 1))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<data><a>1</b></data>", "Malformed XML: mismatched tag (line 1, column 13)."),
        (b"<data>\n<a>", "Malformed XML: no element found (line 2, column 4)."),
        (b"<a/><b/>", "Malformed XML: junk after document element (line 1, column 5)."),
        (b"<a>&nope;</a>", "Malformed XML: undefined entity (line 1, column 4)."),
        (b"<a>\xff</a>", "Malformed XML: not well-formed (invalid token) (line 1, column 4)."),
        (b"<x:a/>", "Malformed XML: unbound prefix (line 1, column 1)."),
        (b"", "The XML body is empty."),
        (b"  \n", "The XML body is empty."),
        (
            b'<?xml version="1.0" encoding="nope"?><a/>',
            "XML encoding not supported: unknown encoding: nope.",
        ),
        (b'{"a": 1}', "Malformed XML: not well-formed (invalid token) (line 1, column 1)."),
    ],
)
def test_malformed_xml_messages(body, message):
    with pytest.raises(XMLInputError) as excinfo:
        parse_xml(body)
    assert str(excinfo.value) == message


def test_declared_encodings_are_honoured():
    root = parse_xml(
        '<?xml version="1.0" encoding="ISO-8859-1"?><a><b>été</b></a>'.encode("latin-1")
    )
    assert xml_to_json(root) == {"b": "été"}
    assert xml_to_json(parse_xml("<a><b>été</b></a>".encode("utf-16"))) == {"b": "été"}


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


@settings(max_examples=100, deadline=None)
@given(data=json_objects, root_tag=st.text(max_size=10))
def test_property_json_to_xml_always_parses(data, root_tag):
    out = json_to_xml(data, root_tag)
    assert out.startswith(XML_DECL)
    root = parse_xml(out)
    assert root.get("id") == INVALID_XML_CHARS.sub("\ufffd", root_tag)


xml_texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r<>&\"'"),
    max_size=20,
)


@settings(max_examples=100, deadline=None)
@given(
    data=st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
            lambda key: not key.startswith("xml")
        ),
        xml_texts,
        max_size=8,
    )
)
def test_property_flat_string_objects_round_trip_through_xml(data):
    assert xml_to_json(parse_xml(json_to_xml(data, "f"))) == data


@settings(max_examples=50, deadline=None)
@given(data=json_objects)
def test_property_empty_subset_is_identity(data):
    assert select_subset_json(data, []) is data
    assert select_subset_json(data, []) == data


path_keys = st.text(alphabet="ab/c", max_size=6)
subset_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, min_size=1, max_size=4)
        | st.dictionaries(path_keys, children, max_size=4)
    ),
    max_leaves=20,
)


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
