"""webapp.delivery.wrapper: the custom wrapper, checked at save and applied at send."""

from __future__ import annotations

import pytest

from webapp.delivery.wrapper import PLACEHOLDER, apply_payload_template, validate_payload_template


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
    assert validate_payload_template(template, "json") == []


def test_invalid_json_template_says_where():
    [error] = validate_payload_template('{"data": %SUBMISSION%', "json")
    assert "not valid JSON" in error
    assert "Expecting ',' delimiter at line 1, column 22" in error
    [error] = validate_payload_template('{\n  "a": %SUBMISSION%,\n  "b": x\n}', "json")
    assert "Expecting value at line 3, column 8" in error
    assert validate_payload_template("{{%SUBMISSION%}}", "json") != []
    assert validate_payload_template("not json", "json") != []


def test_template_placeholder_inside_a_string_is_refused():
    [error] = validate_payload_template('{"data": "%SUBMISSION%"}', "json")
    assert "inside a JSON string" in error
    assert validate_payload_template('{"data": "before %SUBMISSION% after"}', "json") != []


def test_template_with_xml_format_is_refused():
    assert validate_payload_template('{"data": %SUBMISSION%}', "xml") == [
        "A custom wrapper can only be used with the JSON format."
    ]
    assert validate_payload_template("", "xml") == []
    assert validate_payload_template(None, "xml") == []


def test_template_too_long_or_not_a_string():
    too_long = '{"a": "' + "x" * 65536 + '"}'
    assert validate_payload_template(too_long, "json") == [
        "The custom wrapper is too long (at most 65536 characters)."
    ]
    assert validate_payload_template(42, "json") == ["The custom wrapper must be a string."]  # type: ignore[arg-type]


def test_apply_payload_template():
    submission = {"a": "é<&>", "n": [1, None]}
    assert apply_payload_template('{"x": %SUBMISSION%, "y": %SUBMISSION%}', submission) == (
        '{"x": {"a":"é<&>","n":[1,null]}, "y": {"a":"é<&>","n":[1,null]}}'.encode()
    )
    assert apply_payload_template('{"fixed": 1}', submission) == b'{"fixed": 1}'
