"""XForm instances: parse, convert to and from JSON, serialize.

Pure Python on bytes, dicts and ``xml.etree.ElementTree`` elements; knows no
HTTP, no database and nothing else of the app, so ingest (to parse what it
receives) and delivery (to build what it sends) share it. Errors are this
package's own (:class:`XMLInputError`). Results may share unmodified
sub-objects / sub-elements with their input: treat both as read-only.

The conversions are the ones described in the README ("What a hook sends").
"""

from webapp.xforms.parsing import (
    MAX_XML_DEPTH,
    Declarations,
    XMLInputError,
    parse_instance,
    parse_xml,
)
from webapp.xforms.paths import element_children, local_name, split_path
from webapp.xforms.serializer import serialize_instance
from webapp.xforms.to_json import xml_to_json
from webapp.xforms.to_xml import json_to_xml

__all__ = [
    "MAX_XML_DEPTH",
    "Declarations",
    "XMLInputError",
    "element_children",
    "json_to_xml",
    "local_name",
    "parse_instance",
    "parse_xml",
    "serialize_instance",
    "split_path",
    "xml_to_json",
]
