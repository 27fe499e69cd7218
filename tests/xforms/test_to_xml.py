"""webapp.xforms.to_xml: submission objects -> XForm instances."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.xforms.samples import (
    COMMENTS,
    COMMENTS_XML,
    FORM_UID,
    INVALID_XML_CHARS,
    KOBO_XML,
    NESTED_XML,
    XML_DECL,
    json_objects,
    kobo,
    nested,
)
from webapp.xforms import json_to_xml, parse_xml


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


@settings(max_examples=100, deadline=None)
@given(data=json_objects, root_tag=st.text(max_size=10))
def test_property_json_to_xml_always_parses(data, root_tag):
    out = json_to_xml(data, root_tag)
    assert out.startswith(XML_DECL)
    root = parse_xml(out)
    assert root.get("id") == INVALID_XML_CHARS.sub("\ufffd", root_tag)
