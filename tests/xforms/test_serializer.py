"""webapp.xforms.serializer: an instance written back with its namespace declarations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.xforms.samples import ODK_XML, XML_DECL
from webapp.xforms import parse_instance, parse_xml, serialize_instance, xml_to_json


def test_a_parsed_instance_is_written_back_with_every_declaration():
    root, declarations = parse_instance(ODK_XML)
    assert declarations == [
        ("jr", "http://openrosa.org/javarosa"),
        ("orx", "http://openrosa.org/xforms"),
    ]
    out = serialize_instance(root, declarations)
    assert out.startswith(
        XML_DECL + b'<data xmlns:jr="http://openrosa.org/javarosa"'
        b' xmlns:orx="http://openrosa.org/xforms" id="household_survey"'
    )
    assert xml_to_json(parse_xml(out)) == xml_to_json(parse_xml(ODK_XML))


def test_an_undeclared_namespace_gets_a_generated_prefix_and_a_default_one_yields():
    root = ET.Element("{urn:a}r")
    ET.SubElement(root, "plain").text = "1"
    out = serialize_instance(root, [("", "urn:a")])
    # A default namespace would capture <plain>: the uri gets a prefix instead.
    assert out == XML_DECL + b'<ns0:r xmlns:ns0="urn:a"><plain>1</plain></ns0:r>'
