"""Parsing an XML document (an XForm instance) safely.

Uses defusedxml: any ``<!DOCTYPE>`` (hence billion laughs and external
entities) is refused, and nesting is limited while parsing. The namespace
declarations of the document, which ElementTree drops, can be kept
(:func:`parse_instance`) so a serializer can write them back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import DefusedXMLParser

MAX_XML_DEPTH = 100
"""Deepest element nesting accepted by :func:`parse_xml` (the root is level 1)."""

#: (prefix, uri) namespace declarations in document order ("" = default namespace).
Declarations = list[tuple[str, str]]


class XMLInputError(ValueError):
    """The body is not acceptable XML.

    ``str(e)`` says what is wrong, with the line and column when known.
    """


class _TooDeep(Exception):
    pass


class _LimitedTreeBuilder(ET.TreeBuilder):
    """A TreeBuilder that refuses deep nesting as elements open.

    The check runs while parsing (expat and the C TreeBuilder are iterative),
    so a 10,000-deep document is refused after 101 start tags, without ever
    building a deep tree or recursing. It also records the namespace
    declarations (``start_ns``), which ElementTree otherwise drops.
    """

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.namespaces: Declarations = []

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self.depth += 1
        if self.depth > MAX_XML_DEPTH:
            raise _TooDeep
        return super().start(tag, attrs)

    def end(self, tag: str) -> ET.Element:
        self.depth -= 1
        return super().end(tag)

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces.append((prefix, uri))


def parse_instance(body: bytes) -> tuple[ET.Element, Declarations]:
    """Parse like :func:`parse_xml`; also return the namespace declarations
    of the document (every ``xmlns`` attribute, in document order)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        body = bytes(body)
    if not body or body.isspace():
        raise XMLInputError("The XML body is empty.")
    builder = _LimitedTreeBuilder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        root = parser.close()
    except _TooDeep:
        raise XMLInputError(
            f"XML is nested too deeply (more than {MAX_XML_DEPTH} levels)."
        ) from None
    except DTDForbidden:
        raise XMLInputError(
            "XML with a document type declaration (<!DOCTYPE ...>) is not accepted."
        ) from None
    except EntitiesForbidden as exc:
        raise XMLInputError(
            f"XML entity declarations are not accepted (entity {exc.name!r})."
        ) from None
    except ExternalReferenceForbidden:
        raise XMLInputError("XML external entity references are not accepted.") from None
    except DefusedXmlException as exc:  # any other defusedxml refusal
        raise XMLInputError(f"XML refused: {exc}.") from None
    except ET.ParseError as exc:
        message = str(exc)
        position = getattr(exc, "position", None)
        if position:
            # expat's message ends with ": line L, column C" (0-based column).
            message = message.rsplit(": line ", 1)[0]
            line, column = position
            message = f"{message} (line {line}, column {column + 1})"
        raise XMLInputError(f"Malformed XML: {message}.") from None
    except LookupError as exc:  # unknown encoding in the XML declaration
        raise XMLInputError(f"XML encoding not supported: {exc}.") from None
    except (UnicodeError, ValueError) as exc:
        raise XMLInputError(f"Malformed XML: {exc}.") from None
    return root, builder.namespaces


def parse_xml(body: bytes) -> ET.Element:
    """Parse an XML document safely and return its root element.

    Uses defusedxml with ``forbid_dtd``, ``forbid_entities`` and
    ``forbid_external``: any ``<!DOCTYPE>`` (hence billion laughs and external
    entities) is refused. Nesting deeper than :data:`MAX_XML_DEPTH` levels is
    refused while parsing (no recursion). Comments and processing
    instructions are dropped.

    Raises :class:`XMLInputError` with a clear message (line and 1-based
    column when known) for malformed XML, a DTD or entities, too deep nesting
    or an invalid/unknown encoding.
    """
    return parse_instance(body)[0]
