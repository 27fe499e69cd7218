"""Turning a request body into a submission: format, parsed tree, instance id.

Pure functions: no Flask request, no database. Every refusal is an
`IngestError` carrying the HTTP status and a message for the sender.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
    State,
)

from webapp.models.submissions import (
    JSON_CONTENT_TYPE,
    URLENCODED_CONTENT_TYPE,
    XML_CONTENT_TYPE,
)
from webapp.xforms import XMLInputError, parse_xml, xml_to_json

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")
MULTIPART = "multipart/form-data"
OPENROSA_PART = "xml_submission_file"
MAX_INSTANCE_ID = 255
MAX_JSON_DEPTH = 100  # as MAX_XML_DEPTH: no form nests this deep, and deeper trees
# cannot be stored, converted or loaded again without risking recursion limits
MAX_INT_DIGITS = 4300  # what Python converts (sys.get_int_max_str_digits())
# An OpenRosa post: the instance and its attachments. Collect puts up to 101
# attachments and an `*isIncomplete*` field in one post, Enketo any number.
MAX_FORM_PARTS = 1000
# A surrogate code point left alone (a JSON escape such as \ud800 without its
# pair) is not a Unicode character: it cannot be stored as UTF-8 text, shown
# or sent as valid UTF-8. Strict UTF-8 decoding already refuses raw ones.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN_KEY = 60  # the most of a key quoted in a message


class IngestError(Exception):
    """A refused request: `status` (400, 413, 415) and a message for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class MediaFile:
    """A file part of an OpenRosa post (a photo, a recording): docs/attachments.md."""

    filename: str
    mimetype: str
    data: bytes


@dataclass(frozen=True)
class ParsedSubmission:
    source_format: str  # "json" or "xml"
    content_type: str  # of `body`
    body: bytes  # what is stored and, unless converted, sent
    data: Any  # the parsed tree
    files: tuple[MediaFile, ...] = ()  # the media parts of a multipart post
    incomplete: bool = False  # `*isIncomplete*=yes`: more parts of this post follow


def media_kind(mimetype: str) -> str:
    """ "json", "xml", "urlencoded" or "multipart" for a media type; 415 otherwise."""
    if mimetype in JSON_TYPES or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        return "json"
    if mimetype in XML_TYPES or mimetype.endswith("+xml"):
        return "xml"
    if mimetype == URLENCODED_CONTENT_TYPE:
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
        return ParsedSubmission("json", JSON_CONTENT_TYPE, body, _parse_json(body))
    if kind == "xml":
        return ParsedSubmission("xml", XML_CONTENT_TYPE, body, _parse_xml(body))
    if kind == "urlencoded":
        return ParsedSubmission("json", URLENCODED_CONTENT_TYPE, body, _parse_urlencoded(body))
    xml_body = _openrosa_part(content_type_header, body)
    data = _parse_xml(xml_body)
    return ParsedSubmission(
        "xml", XML_CONTENT_TYPE, xml_body, data, *media_parts(content_type_header, body)
    )


_TOO_DEEP = f"The JSON body is nested too deeply (more than {MAX_JSON_DEPTH} levels)."


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> dict:
    if not body.strip():
        raise IngestError(400, "The body is empty; a JSON object is expected.")
    try:
        # Strictly UTF-8 (RFC 8259): json.loads(bytes) would also take UTF-16/32,
        # and UTF-8-encoded surrogates, and hooks forward the body as received.
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise IngestError(
            400, f"The JSON body is not valid UTF-8 (at byte {exc.start + 1})."
        ) from None
    try:
        data = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates
        )
    except json.JSONDecodeError as exc:
        raise IngestError(
            400, f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:
        raise IngestError(400, _TOO_DEEP) from None
    except ValueError as exc:  # NaN/Infinity, integers too long to convert
        if "digits" in str(exc):
            raise IngestError(
                400, f"Malformed JSON: a number has more than {MAX_INT_DIGITS} digits."
            ) from None
        raise IngestError(400, f"Malformed JSON: {exc}.") from None
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        raise IngestError(400, f"The JSON body must be an object, not {kind}.")
    _check_tree(data)
    return data


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused if a key occurs twice in it (at any depth: the
    parser calls this for every object). json.loads would keep the last value
    where a receiver may keep the first (e.g. meta/instanceID)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise IngestError(
                    400, f"The JSON body has a duplicate key {_quoted(key)} in one object."
                )
            seen.add(key)
    return obj


def _quoted(key: str) -> str:
    shown = key if len(key) <= _SHOWN_KEY else key[:_SHOWN_KEY] + "…"
    return repr(shown)  # repr escapes what cannot be shown (control characters, surrogates)


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise IngestError(400, f"The JSON body contains a NUL character (\\u0000){where}.")
    if not text.isascii() and (match := _SURROGATE.search(text)):
        raise IngestError(
            400,
            f"The JSON body contains an unpaired surrogate (\\u{ord(match.group()):04x}){where},"
            " which is not a character: send a surrogate pair or the character itself.",
        )


def _check_tree(data: Any) -> None:
    """Refuse NUL characters (PostgreSQL cannot store them in text), unpaired
    surrogates (not Unicode: they cannot be stored, shown or sent as UTF-8),
    numbers too large for a float (1e400 parses as infinity, which JSON cannot
    hold) and deep nesting. Iterative, so any tree json.loads built can be
    checked.
    """
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
            raise IngestError(400, _TOO_DEEP)
        if isinstance(item, dict):
            for key, value in item.items():
                _check_text(key, " in a key")
                stack.append((value, depth + 1))
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str):
            _check_text(item, "")
        elif isinstance(item, float) and not math.isfinite(item):
            raise IngestError(400, "Malformed JSON: a number is too large (out of range).")


def _parse_xml(body: bytes) -> dict:
    if not body.strip():
        raise IngestError(400, "The body is empty; an XML instance is expected.")
    try:
        root = parse_xml(body)
    except XMLInputError as exc:
        message = str(exc)
        if not message.startswith("Malformed XML"):
            message = f"Malformed XML: {message}"
        raise IngestError(400, message) from None
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
        existing = data.get(key)
        if existing is None:
            data[key] = value
        elif isinstance(existing, list):
            existing.append(value)  # in place: a key repeated n times costs O(n), not O(n²)
        else:
            data[key] = [existing, value]
    return data


def _openrosa_part(content_type_header: str, body: bytes) -> bytes:
    """The raw bytes of the one `xml_submission_file` part, sent as a file or a field.

    Werkzeug's sans-IO decoder yields each part's bytes as sent: a field is
    not decoded and re-encoded (which would replace bytes that are not UTF-8,
    and corrupt an instance in another encoding). Other parts (attachments)
    are skipped, not kept.
    """
    _, options = parse_options_header(content_type_header)
    boundary = options.get("boundary", "")
    if not boundary:
        raise IngestError(400, "Malformed multipart body: the Content-Type has no boundary.")
    try:
        decoder = MultipartDecoder(boundary.encode("ascii"), max_parts=MAX_FORM_PARTS)
    except UnicodeEncodeError:
        raise IngestError(400, "Malformed multipart body: the boundary must be ASCII.") from None
    found: list[list[bytes]] = []
    current: list[bytes] | None = None
    try:
        for event in _events(decoder, body):
            if isinstance(event, Field | File):
                current = [] if event.name == OPENROSA_PART else None
                if current is not None:
                    found.append(current)
            elif isinstance(event, Data) and current is not None:
                current.append(event.data)
    except RequestEntityTooLarge:
        raise IngestError(
            413, f"The multipart body has more than {MAX_FORM_PARTS} parts."
        ) from None
    except Exception as exc:  # werkzeug raises ValueError (and others) on malformed input
        raise IngestError(
            400, f"Malformed multipart body: {_multipart_problem(decoder, exc)}"
        ) from None
    if not found:
        raise IngestError(
            400, f"A multipart submission needs an {OPENROSA_PART!r} part (OpenRosa)."
        )
    if len(found) > 1:
        raise IngestError(
            400, f"The multipart body has {len(found)} {OPENROSA_PART!r} parts; send one."
        )
    return b"".join(found[0])


FEED_BYTES = 65536  # the decoder searches its whole buffer: fed 5 MB at once, it is 20x slower


def _events(decoder: MultipartDecoder, body: bytes) -> Iterator[Field | File | Data]:
    """The decoder's events for `body` up to the epilogue, fed FEED_BYTES at a time."""
    view = memoryview(body)
    for start in [*range(0, len(body), FEED_BYTES), None]:
        decoder.receive_data(None if start is None else view[start : start + FEED_BYTES])
        while not isinstance(event := decoder.next_event(), NeedData):
            if isinstance(event, Epilogue):
                return
            yield event


INCOMPLETE_PART = "*isIncomplete*"
MAX_FILENAME = 255


def media_parts(content_type_header: str, body: bytes) -> tuple[tuple[MediaFile, ...], bool]:
    """The file parts of a multipart `body` that `_openrosa_part` accepted, and
    whether it says `*isIncomplete*=yes` (a split upload: docs/attachments.md).

    A file is a part with a file name, other than the instance. Its name is
    the last segment of that file name (as the instance names it); a name
    sent twice with the same bytes counts once. Raises IngestError (400)
    for a name that is empty, too long or not printable, or sent twice with
    different bytes.
    """
    boundary = parse_options_header(content_type_header)[1]["boundary"]
    decoder = MultipartDecoder(boundary.encode("ascii"), max_parts=MAX_FORM_PARTS)
    files: dict[str, MediaFile] = {}
    current: tuple[str, str, list[bytes]] | None = None
    for event in _events(decoder, body):
        if isinstance(event, Field | File):
            if current is not None:
                _keep_file(files, *current)
            current = None
            if isinstance(event, File) and event.name != OPENROSA_PART and event.filename:
                mimetype = event.headers.get("Content-Type") or "application/octet-stream"
                current = (event.filename, mimetype, [])
            elif event.name == INCOMPLETE_PART:
                current = (INCOMPLETE_PART, "", [])
        elif isinstance(event, Data) and current is not None:
            current[2].append(event.data)
    if current is not None:
        _keep_file(files, *current)
    incomplete = files.pop(INCOMPLETE_PART, None) is not None
    return tuple(files.values()), incomplete


def _keep_file(files: dict[str, MediaFile], sent: str, mimetype: str, chunks: list[bytes]):
    data = b"".join(chunks)
    if sent == INCOMPLETE_PART:
        if data.strip().lower() == b"yes":
            files[INCOMPLETE_PART] = MediaFile(sent, "", b"")
        return
    name = sent.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or len(name) > MAX_FILENAME or not name.isprintable() or name == INCOMPLETE_PART:
        raise IngestError(
            400, f"A file part's name must be 1 to {MAX_FILENAME} printable characters: {sent!r}."
        )
    mimetype = parse_options_header(mimetype)[0][:100] or "application/octet-stream"
    earlier = files.get(name)
    if earlier is not None and earlier.data != data:
        raise IngestError(400, f"The post has two different files named {name!r}.")
    files[name] = MediaFile(name, mimetype, data)


def _multipart_problem(decoder: MultipartDecoder, exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "the headers of a part are not UTF-8."
    if "Content-Disposition" in str(exc):
        return "a part has no Content-Disposition header."
    if decoder.state is State.PREAMBLE:
        return "the boundary of the Content-Type header does not occur in the body."
    if decoder.state in (State.PART, State.DATA_START, State.DATA):
        return "the body ends inside a part (cut short, or the closing boundary is missing)."
    return str(exc) or type(exc).__name__


def instance_id_of(data: Any, idempotency_key: str | None) -> str:
    """The instance id: meta/instanceID, else uuid:<_uuid>, else the Idempotency-Key, else new."""
    candidate = None
    if isinstance(data, dict):
        candidate = data.get("meta/instanceID")
        if candidate is None and isinstance(data.get("meta"), dict):
            candidate = data["meta"].get("instanceID")
        uuid_value = data.get("_uuid")
        if candidate is None and uuid_value is not None and uuid_value != "":
            if not isinstance(uuid_value, str | int) or isinstance(uuid_value, bool):
                raise IngestError(400, "The _uuid must be a string.")
            candidate = f"uuid:{uuid_value}"
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
