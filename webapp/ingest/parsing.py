"""Turning a request body into a submission: format, parsed tree, instance id.

Pure functions: no Flask request, no database. Every refusal is an
`IngestError` carrying the HTTP status and a message for the sender.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.formparser import parse_form_data

from webapp.delivery.payloads import XMLInputError, parse_xml, xml_to_json

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
OPENROSA_PART = "xml_submission_file"
MAX_INSTANCE_ID = 255


class IngestError(Exception):
    """A refused request: `status` (400, 413, 415) and a message for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ParsedSubmission:
    source_format: str  # "json" or "xml"
    content_type: str  # of `body`
    body: bytes  # what is stored and, unless converted, sent
    data: Any  # the parsed tree


def media_kind(mimetype: str) -> str:
    """ "json", "xml", "urlencoded" or "multipart" for a media type; 415 otherwise."""
    if mimetype in JSON_TYPES or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        return "json"
    if mimetype in XML_TYPES or mimetype.endswith("+xml"):
        return "xml"
    if mimetype == URLENCODED:
        return "urlencoded"
    if mimetype == MULTIPART:
        return "multipart"
    supported = (
        "application/json, application/xml, application/x-www-form-urlencoded"
        " or multipart/form-data"
    )
    if not mimetype:
        raise IngestError(415, f"A Content-Type header is required: {supported}.")
    raise IngestError(415, f"Unsupported Content-Type {mimetype!r}: use {supported}.")


def parse_body(kind: str, content_type_header: str, body: bytes) -> ParsedSubmission:
    """Parse `body` of a `media_kind()`. Raises IngestError (400)."""
    if kind == "json":
        return ParsedSubmission("json", "application/json", body, _parse_json(body))
    if kind == "xml":
        return ParsedSubmission("xml", "application/xml", body, _parse_xml(body))
    if kind == "urlencoded":
        return ParsedSubmission("json", URLENCODED, body, _parse_urlencoded(body))
    xml_body = _openrosa_part(content_type_header, body)
    return ParsedSubmission("xml", "application/xml", xml_body, _parse_xml(xml_body))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> dict:
    if not body.strip():
        raise IngestError(400, "The body is empty; a JSON object is expected.")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise IngestError(400, "The JSON body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise IngestError(
            400, f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:
        raise IngestError(400, "Malformed JSON: nested too deeply.") from None
    except ValueError as exc:  # NaN/Infinity, integers too long to convert
        raise IngestError(400, f"Malformed JSON: {exc}.") from None
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        raise IngestError(400, f"The JSON body must be an object, not {kind}.")
    _check_strings(data)
    return data


def _check_strings(data: Any) -> None:
    """Refuse NUL characters, which PostgreSQL cannot store in text (iterative)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if "\x00" in key:
                    raise IngestError(
                        400, "The JSON body contains a NUL character (\\u0000) in a key."
                    )
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and "\x00" in item:
            raise IngestError(400, "The JSON body contains a NUL character (\\u0000).")


def _parse_xml(body: bytes) -> dict:
    if not body.strip():
        raise IngestError(400, "The body is empty; an XML instance is expected.")
    try:
        root = parse_xml(body)
    except XMLInputError as exc:
        raise IngestError(400, f"Malformed XML: {exc}") from None
    return xml_to_json(root)


def _parse_urlencoded(body: bytes) -> dict:
    try:
        # Raw whitespace cannot be part of an encoded value (it would be %0A or +):
        # a trailing newline from a file or a script is not data.
        text = body.decode("ascii").strip()
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except UnicodeDecodeError:
        raise IngestError(
            400, "A urlencoded body must be ASCII with UTF-8 percent-escapes."
        ) from None
    except ValueError as exc:
        raise IngestError(400, f"Malformed urlencoded body: {exc}.") from None
    if not pairs:
        raise IngestError(400, "The body is empty; form fields are expected.")
    data: dict[str, Any] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise IngestError(400, "The body contains a NUL character.")
        if key in data:
            existing = data[key]
            data[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            data[key] = value
    return data


def _openrosa_part(content_type_header: str, body: bytes) -> bytes:
    environ = {
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type_header,
        "REQUEST_METHOD": "POST",
    }
    try:
        _, form, files = parse_form_data(environ, silent=False, max_form_parts=100)
    except Exception as exc:  # werkzeug raises ValueError or its own RequestEntityTooLarge
        raise IngestError(400, f"Malformed multipart body: {exc}") from None
    try:
        part = files.get(OPENROSA_PART)
        if part is not None:
            return part.read()
    finally:
        for _, upload in files.items(multi=True):
            upload.close()
    if OPENROSA_PART in form:
        return form[OPENROSA_PART].encode("utf-8")
    raise IngestError(400, f"A multipart submission needs an {OPENROSA_PART!r} part (OpenRosa).")


def instance_id_of(data: Any, idempotency_key: str | None) -> str:
    """The instance id: meta/instanceID, else uuid:<_uuid>, else the Idempotency-Key, else new."""
    candidate = None
    if isinstance(data, dict):
        candidate = data.get("meta/instanceID")
        if candidate is None and isinstance(data.get("meta"), dict):
            candidate = data["meta"].get("instanceID")
        if candidate is None and data.get("_uuid") not in (None, ""):
            candidate = f"uuid:{data['_uuid']}"
    if candidate is None and idempotency_key:
        candidate = idempotency_key
    if candidate is None:
        return f"uuid:{uuid.uuid4()}"
    if not isinstance(candidate, (str, int)) or isinstance(candidate, bool):
        raise IngestError(400, "The instance id (meta/instanceID or _uuid) must be a string.")
    candidate = str(candidate).strip()
    if not candidate:
        raise IngestError(400, "The instance id (meta/instanceID) is empty.")
    if len(candidate) > MAX_INSTANCE_ID or not candidate.isprintable():
        raise IngestError(
            400, f"The instance id must be at most {MAX_INSTANCE_ID} printable characters."
        )
    return candidate
