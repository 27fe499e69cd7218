"""What a hook sends: one small class per payload format, and :func:`build_payload`.

Shaped like healthchecks' transports: a format is a small class with one
method (``build``); a failure is a :class:`PayloadError` carrying a message
fit for the delivery log and whether it is permanent. A payload is built
from the stored submission and the hook's settings only, so building it again
fails the same way: every failure here is permanent (the log fails at once,
without retries).

The rules (formats, subsets, wrapper) are the README's "What a hook sends".
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, NamedTuple

from webapp.delivery.subset import select_subset_json, select_subset_xml
from webapp.delivery.wrapper import XML_ONLY_JSON_WRAPPER, WrapperError, apply_payload_template
from webapp.models.submissions import (
    JSON_CONTENT_TYPE,
    STORED_CONTENT_TYPES,
    XML_CONTENT_TYPE,
)
from webapp.xforms import XMLInputError, json_to_xml, parse_instance, serialize_instance


class PayloadError(ValueError):
    """A payload cannot be built. ``message`` (also ``str(e)``) is clear and
    user-facing (fit for a delivery log); ``permanent`` says that retrying
    cannot help (true for every failure of a build)."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class StoredSubmission(NamedTuple):
    """A submission as stored: its content type, body as received, parsed data.
    (A named tuple: one is made per delivery, and it is cheap to make.)"""

    content_type: str
    body: bytes
    data: Any


class PayloadFormat:
    """One export format: ``build`` turns a stored submission into the body
    sent with :attr:`content_type`."""

    content_type: ClassVar[str]
    __slots__ = ("form_uid", "subset_fields", "payload_template")

    def __init__(
        self, *, form_uid: str, subset_fields: list[str], payload_template: str | None
    ) -> None:
        self.form_uid = form_uid
        self.subset_fields = subset_fields
        self.payload_template = payload_template

    def build(self, submission: StoredSubmission) -> bytes:
        raise NotImplementedError

    def _subset_data(self, submission: StoredSubmission) -> dict[str, Any]:
        if not isinstance(submission.data, dict):
            raise PayloadError("The stored submission is not a JSON object.")
        if self.subset_fields:
            return select_subset_json(submission.data, self.subset_fields)
        return submission.data


class JSONFormat(PayloadFormat):
    """``application/json``: the submission object (its subset), wrapped by the
    template when set, else compact JSON (UTF-8, non-ASCII kept). A JSON
    submission without subset or wrapper is sent byte for byte as received."""

    __slots__ = ()

    content_type = JSON_CONTENT_TYPE

    def build(self, submission: StoredSubmission) -> bytes:
        if (
            submission.content_type == JSON_CONTENT_TYPE
            and not self.subset_fields
            and self.payload_template is None
        ):
            return bytes(submission.body)
        obj = self._subset_data(submission)
        if self.payload_template is not None:
            return apply_payload_template(self.payload_template, obj)
        return _json_bytes(obj)


class XMLFormat(PayloadFormat):
    """``application/xml``: an XML submission as received, or with a subset
    re-parsed, filtered and serialized (XML declaration, root attributes and
    the document's namespace declarations kept); a JSON or urlencoded
    submission becomes ``json_to_xml`` of its (subset) object, the form uid as
    root. A wrapper cannot be used."""

    __slots__ = ()

    content_type = XML_CONTENT_TYPE

    def build(self, submission: StoredSubmission) -> bytes:
        if self.payload_template is not None:
            raise PayloadError(XML_ONLY_JSON_WRAPPER)
        if submission.content_type == XML_CONTENT_TYPE:
            if not self.subset_fields:
                return bytes(submission.body)
            root, declarations = parse_instance(submission.body)
            subset = select_subset_xml(root, self.subset_fields)
            return serialize_instance(subset, declarations)
        return json_to_xml(self._subset_data(submission), self.form_uid)


#: export_type -> its format.
FORMATS: dict[str, type[PayloadFormat]] = {"json": JSONFormat, "xml": XMLFormat}


def build_payload(
    *,
    content_type: str,
    body: bytes,
    data: Any,
    form_uid: str,
    export_type: str,
    subset_fields: list[str],
    payload_template: str | None,
) -> tuple[bytes, str]:
    """Build the body a hook sends and its content type.

    ``content_type``, ``body`` and ``data`` are the submission as stored
    (one of :data:`STORED_CONTENT_TYPES`; ``data`` is the parsed object, for
    XML its KoboToolbox-style JSON). ``export_type`` picks the format in
    :data:`FORMATS`. A template that is empty or whitespace only counts as
    no template.

    Raises :class:`PayloadError` (permanent; message fit for the log) when
    the payload cannot be built: wrapper with XML, unknown content type or
    format, stored XML that does not parse, data that cannot be converted,
    invalid tags, a wrapped body over the wrapper's size cap.
    """
    if payload_template is not None and not payload_template.strip():
        payload_template = None
    if content_type not in STORED_CONTENT_TYPES:
        expected = ", ".join(STORED_CONTENT_TYPES)
        raise PayloadError(
            f"Unknown submission content type {content_type!r} (expected one of {expected})."
        )
    format_class = FORMATS.get(export_type)
    if format_class is None:
        raise PayloadError(f"Unknown export type {export_type!r} (expected 'json' or 'xml').")
    payload_format = format_class(
        form_uid=form_uid, subset_fields=subset_fields, payload_template=payload_template
    )
    try:
        built = payload_format.build(StoredSubmission(content_type, body, data))
    except XMLInputError as exc:
        raise PayloadError(f"The stored XML submission cannot be read: {exc}") from None
    except RecursionError:
        raise PayloadError("The submission is nested too deeply to be converted.") from None
    except WrapperError as exc:
        raise PayloadError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"The payload cannot be built: {exc}") from None
    return built, payload_format.content_type


def _json_bytes(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: fall back to \\u escapes
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")
