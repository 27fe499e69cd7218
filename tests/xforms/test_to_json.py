"""webapp.xforms.to_json: XForm instances -> KoboToolbox-style JSON."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.xforms.samples import ODK_JSON, ODK_XML, xml_texts
from webapp.xforms import json_to_xml, parse_xml, xml_to_json


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
