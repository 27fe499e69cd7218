"""webapp.xforms.parsing: safe XML parsing, clear refusals."""

from __future__ import annotations

import pytest

from tests.xforms.samples import ODK_XML, kobo
from webapp.xforms import MAX_XML_DEPTH, XMLInputError, parse_xml, xml_to_json


def test_fixtures_are_local_copies():
    assert ODK_XML.startswith(b"<?xml") and b"household_survey" in ODK_XML
    assert kobo()["_id"] == 48213


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
