"""The custom wrapper (``payload_template``): a JSON text in which every
``%SUBMISSION%`` stands for the (subset) submission object.

:func:`validate_payload_template` checks it when a hook is saved;
:func:`apply_payload_template` builds the body at send time (see README,
"What a hook sends").
"""

from __future__ import annotations

import json
import math
from typing import Any

from webapp.validation import MESSAGES, Problem

PLACEHOLDER = "%SUBMISSION%"
MAX_TEMPLATE_LENGTH = 65536
#: Each placeholder repeats the whole submission: a few are useful, 1,000
#: would turn a 100 KB submission into a 100 MB body.
MAX_PLACEHOLDERS = 10
#: The largest body a wrapper may build (32 MiB): a submission of the default
#: MAX_SUBMISSION_BYTES (10 MB) fits, wrapped up to three times.
MAX_WRAPPED_BYTES = 32 * 1024 * 1024
FIELD = "payload_template"
XML_ONLY_JSON_WRAPPER = MESSAGES["wrapper.json_only"]

_TEMPLATE_PROBE = '{"x":1}'


class WrapperError(ValueError):
    """The wrapper cannot be applied to a submission; ``str(e)`` says why."""


def _template_position(template: str, substituted_pos: int, replacement_len: int) -> int:
    """Map a position in the template with placeholders replaced back to the
    original template (a position inside a replacement maps to the start of
    its placeholder)."""
    sub_offset = orig_offset = 0
    pieces = template.split(PLACEHOLDER)
    for index, piece in enumerate(pieces):
        if substituted_pos < sub_offset + len(piece):
            return orig_offset + substituted_pos - sub_offset
        sub_offset += len(piece)
        orig_offset += len(piece)
        if index < len(pieces) - 1:
            if substituted_pos < sub_offset + replacement_len:
                return orig_offset
            sub_offset += replacement_len
            orig_offset += len(PLACEHOLDER)
    return len(template)


def _line_column(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, column


def validate_payload_template(template: str | None, export_type: str) -> list[Problem]:
    """Return the problems of a ``payload_template`` (``[]`` = valid).

    * ``None``, ``""`` or whitespace only: no wrapper, valid
      (``build_payload`` ignores such a template too).
    * Only with the JSON format: with ``export_type == "xml"`` a wrapper is
      refused (``wrapper.json_only``).
    * At most :data:`MAX_TEMPLATE_LENGTH` characters and
      :data:`MAX_PLACEHOLDERS` placeholders.
    * It must parse as JSON with ``{}`` in place of every ``%SUBMISSION%``
      (the problem gives the line/column in the template), and also with a
      non-empty object in place of it, which catches a placeholder inside a
      JSON string (``"%SUBMISSION%"`` in quotes). A template without the
      placeholder is allowed (a fixed JSON body).
    """

    def problem(code: str, **params: Any) -> list[Problem]:
        return [Problem(FIELD, code, {"placeholder": PLACEHOLDER, **params})]

    if template is None:
        return []
    if not isinstance(template, str):
        return problem("wrapper.not_text")
    if not template.strip():
        return []
    if export_type == "xml":
        return problem("wrapper.json_only")
    if len(template) > MAX_TEMPLATE_LENGTH:
        return problem("wrapper.too_long", most=MAX_TEMPLATE_LENGTH)
    count = template.count(PLACEHOLDER)
    if count > MAX_PLACEHOLDERS:
        return problem("wrapper.too_many_placeholders", count=f"{count:,}", most=MAX_PLACEHOLDERS)
    try:
        json.loads(
            template.replace(PLACEHOLDER, "{}"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        pos = _template_position(template, exc.pos, 2)
        line, column = _line_column(template, pos)
        return problem("wrapper.invalid_json", detail=exc.msg, line=line, column=column)
    except RecursionError:
        return problem("wrapper.too_deep")
    except ValueError as exc:  # NaN, Infinity, 1e999, numbers with too many digits
        return problem("wrapper.bad_number", detail=str(exc)[:200])
    if PLACEHOLDER in template:
        try:
            json.loads(template.replace(PLACEHOLDER, _TEMPLATE_PROBE))
        except json.JSONDecodeError:
            return problem("wrapper.quoted_placeholder")
    return []


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is too large for a JSON number.")
    return value


def _dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def apply_payload_template(
    template: str, submission: dict[str, Any], *, max_bytes: int = MAX_WRAPPED_BYTES
) -> bytes:
    """Replace every ``%SUBMISSION%`` in ``template`` by the compact JSON of
    ``submission`` (``ensure_ascii=False``) and return UTF-8 bytes.

    Strings the encoder cannot write as UTF-8 (lone surrogates) are written
    as ``\\uXXXX`` escapes instead. The size of the result is computed from
    the encoded submission and template before the body is joined: a body
    over ``max_bytes`` is never built (placeholders multiply the submission).

    Raises :class:`WrapperError` if the body would be larger than
    ``max_bytes``, cannot be encoded (a template with lone surrogates) or the
    submission cannot be serialized.
    """
    try:
        dumped = _dump_json(submission)
        try:
            dumped_bytes = dumped.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: written as \uXXXX escapes
            dumped = json.dumps(submission, ensure_ascii=True, separators=(",", ":"))
            dumped_bytes = dumped.encode("ascii")
        del dumped
        pieces = [piece.encode("utf-8") for piece in template.split(PLACEHOLDER)]
    except (TypeError, ValueError) as exc:
        raise WrapperError(f"The custom wrapper cannot be applied: {exc}.") from None
    count = len(pieces) - 1
    size = sum(len(piece) for piece in pieces) + count * len(dumped_bytes)
    if size > max_bytes:
        raise WrapperError(
            f"The custom wrapper would build a body of {size:,} bytes"
            f" ({count:,} x {PLACEHOLDER} of {len(dumped_bytes):,} bytes);"
            f" at most {max_bytes:,} bytes can be sent."
        )
    return dumped_bytes.join(pieces)
