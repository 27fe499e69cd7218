"""webapp.delivery.wrapper: the custom wrapper, checked at save and applied at send."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from sqlalchemy import select

from tests.helpers import run_worker
from webapp.delivery import queue as q
from webapp.delivery.wrapper import (
    MAX_PLACEHOLDERS,
    MAX_WRAPPED_BYTES,
    PLACEHOLDER,
    WrapperError,
    apply_payload_template,
    validate_payload_template,
)
from webapp.extensions import db
from webapp.hook_settings import clean_hook_settings
from webapp.models import FAILED, DeliveryLog
from webapp.validation import Problem, english_errors


def wrapper_messages(template, export_type: str) -> list[str]:
    """validate_payload_template() as the API words it."""
    return [problem.message() for problem in validate_payload_template(template, export_type)]


def test_wrapper_problems_are_values():
    [problem] = validate_payload_template('{\n  "a": %SUBMISSION%,\n  "b": x\n}', "json")
    assert problem == Problem(
        "payload_template",
        "wrapper.invalid_json",
        {"placeholder": PLACEHOLDER, "detail": "Expecting value", "line": 3, "column": 8},
    )


@pytest.mark.parametrize(
    "template",
    [
        None,
        "",
        "   ",
        '{"data": %SUBMISSION%}',
        '{"a": [%SUBMISSION%, %SUBMISSION%], "b": "%"}',
        PLACEHOLDER,
        '{"fixed": true}',
        '{\n  "event": "new",\n  "submission": %SUBMISSION%\n}',
    ],
)
def test_valid_templates(template):
    assert wrapper_messages(template, "json") == []


def test_invalid_json_template_says_where():
    [error] = wrapper_messages('{"data": %SUBMISSION%', "json")
    assert "not valid JSON" in error
    assert "Expecting ',' delimiter at line 1, column 22" in error
    [error] = wrapper_messages('{\n  "a": %SUBMISSION%,\n  "b": x\n}', "json")
    assert "Expecting value at line 3, column 8" in error
    assert wrapper_messages("{{%SUBMISSION%}}", "json") != []
    assert wrapper_messages("not json", "json") != []


def test_template_placeholder_inside_a_string_is_refused():
    [error] = wrapper_messages('{"data": "%SUBMISSION%"}', "json")
    assert "inside a JSON string" in error
    assert wrapper_messages('{"data": "before %SUBMISSION% after"}', "json") != []


def test_template_with_xml_format_is_refused():
    assert wrapper_messages('{"data": %SUBMISSION%}', "xml") == [
        "A custom wrapper can only be used with the JSON format."
    ]
    assert wrapper_messages("", "xml") == []
    assert wrapper_messages(None, "xml") == []


def test_template_too_long_or_not_a_string():
    too_long = '{"a": "' + "x" * 65536 + '"}'
    assert wrapper_messages(too_long, "json") == [
        "The custom wrapper is too long (at most 65536 characters)."
    ]
    assert wrapper_messages(42, "json") == ["The custom wrapper must be a string."]  # type: ignore[arg-type]


def test_apply_payload_template():
    submission = {"a": "é<&>", "n": [1, None]}
    assert apply_payload_template('{"x": %SUBMISSION%, "y": %SUBMISSION%}', submission) == (
        '{"x": {"a":"é<&>","n":[1,null]}, "y": {"a":"é<&>","n":[1,null]}}'.encode()
    )
    assert apply_payload_template('{"fixed": 1}', submission) == b'{"fixed": 1}'


# --------------------------------------------------------------------------
# Caps: what a wrapper can produce
# --------------------------------------------------------------------------


def placeholders(count: int) -> str:
    return "[" + ", ".join([PLACEHOLDER] * count) + "]"


def test_a_wrapper_with_too_many_placeholders_is_refused_at_save():
    assert wrapper_messages(placeholders(MAX_PLACEHOLDERS), "json") == []
    assert wrapper_messages(placeholders(MAX_PLACEHOLDERS + 1), "json") == [
        f"The custom wrapper has {MAX_PLACEHOLDERS + 1} {PLACEHOLDER} placeholders;"
        f" at most {MAX_PLACEHOLDERS} are allowed."
    ]
    [error] = wrapper_messages(placeholders(1000), "json")
    assert "has 1,000 %SUBMISSION% placeholders" in error


def test_the_api_refuses_a_1000_placeholder_wrapper_and_stores_nothing(ctx):
    cleaned, problems = clean_hook_settings(
        {
            "name": "CRM",
            "endpoint": "https://crm.example.org/hook",
            "export_type": "json",
            "payload_template": placeholders(1000),
        }
    )
    assert english_errors(problems) == {
        "payload_template": [
            f"The custom wrapper has 1,000 {PLACEHOLDER} placeholders;"
            f" at most {MAX_PLACEHOLDERS} are allowed."
        ]
    }


def test_a_wrapped_body_over_the_cap_is_refused_before_it_is_built():
    submission = {"text": "x" * (MAX_WRAPPED_BYTES // 4)}  # a quarter of the cap
    size = len(json.dumps(submission, separators=(",", ":")))
    assert len(apply_payload_template(placeholders(3), submission)) == 3 * size + 6
    tracemalloc.start()
    try:
        with pytest.raises(WrapperError) as excinfo:
            apply_payload_template(placeholders(10), submission)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(excinfo.value) == (
        f"The custom wrapper would build a body of {10 * size + 20:,} bytes"
        f" (10 x {PLACEHOLDER} of {size:,} bytes); at most {MAX_WRAPPED_BYTES:,} bytes"
        " can be sent."
    )
    assert peak < 4 * size  # the dumped submission, never the 80 MiB body


def test_the_cap_counts_bytes_also_with_escaped_surrogates():
    # A lone surrogate is sent as a 6-byte \\uXXXX escape: the cap sees that size.
    submission = {"s": "\ud800" * 10}  # 68 bytes as sent, 38 as UTF-8 with surrogates
    assert len(apply_payload_template(PLACEHOLDER, submission, max_bytes=68)) == 68
    with pytest.raises(WrapperError, match="would build a body of 68 bytes"):
        apply_payload_template(PLACEHOLDER, submission, max_bytes=67)
    submission = {"s": "é" * 10}  # 2 bytes each in UTF-8: 28 bytes
    assert len(apply_payload_template("[%SUBMISSION%]", submission, max_bytes=30)) == 30
    with pytest.raises(WrapperError, match="would build a body of 30 bytes"):
        apply_payload_template("[%SUBMISSION%]", submission, max_bytes=29)


pytestmark = pytest.mark.settings(SSRF_ALLOWED_NETWORKS="127.0.0.0/8")


def test_a_body_over_the_cap_fails_at_once_with_the_message(app, client, make, endpoint):
    """A hook saved before the cap, with 1,000 placeholders: a 100 KB submission
    would become a 100 MB body at each attempt. It fails for good, unsent."""
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, payload_template=placeholders(1000))
    submission = {"text": "x" * 100_000, "meta": {"instanceID": "uuid:big"}}
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json=submission,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.json
    tracemalloc.start()
    try:
        run_worker(app)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert endpoint.requests == []
    assert peak < 20_000_000  # far from the 100 MB body
    with app.app_context():
        [log] = db.session.scalars(select(DeliveryLog)).all()
        assert (log.status, log.tries, log.next_retry_at) == (FAILED, 1, None)
        size = len(json.dumps(submission, separators=(",", ":")))
        assert log.message == (
            "Could not build the payload: The custom wrapper would build a body of"
            f" {1000 * size + 2 + 2 * 999:,} bytes (1,000 x {PLACEHOLDER} of {size:,} bytes);"
            f" at most {MAX_WRAPPED_BYTES:,} bytes can be sent."
        )
        assert [attempt.message for attempt in log.attempts] == [log.message]
        assert not [job for job in q.scheduler().get_jobs() if job.id.startswith("fh-deliver-")]
