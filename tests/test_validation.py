"""webapp.validation: problems as values, one catalogue of codes, English and French."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from webapp.validation import MESSAGES, PANEL, Problem, english_errors

PO = Path(__file__).resolve().parents[1] / "webapp/translations/fr/LC_MESSAGES/messages.po"
_PLACEHOLDER = re.compile(r"%\((\w+)\)([sr])")


def placeholders(text: str) -> set[tuple[str, str]]:
    return set(_PLACEHOLDER.findall(text))


def french() -> dict[str, str]:
    with PO.open("rb") as fh:
        return {m.id: m.string for m in read_po(fh, locale="fr") if m.id}


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_code_has_an_english_template_and_a_french_translation(code):
    catalogue = french()
    api, panel = MESSAGES[code], PANEL.get(code, MESSAGES[code])
    assert api.strip() and panel.strip()
    # The panel's words take the same parameters as the API's.
    assert placeholders(panel) == placeholders(api), code
    for template in {api, panel}:
        assert catalogue.get(template), f"no French for {template!r}"
        assert placeholders(catalogue[template]) == placeholders(template), template
        assert "%%" not in template  # %SUBMISSION% travels as a parameter


def test_the_panel_words_only_codes_of_the_catalogue():
    assert set(PANEL) <= set(MESSAGES)


def test_a_problem_is_a_value_worded_at_the_edge():
    problem = Problem("settings", "header.reserved", {"name": "Host"}, "custom_headers")
    assert problem == Problem("settings", "header.reserved", {"name": "Host"}, "custom_headers")
    assert problem.message() == "Header 'Host' is set by Formhooks and cannot be changed."
    assert problem.panel_template == PANEL["header.reserved"]
    with pytest.raises(TypeError):
        problem.params["name"] = "Other"  # type: ignore[index]
    with pytest.raises(KeyError):
        Problem("name", "no.such.code")


def test_english_errors_group_messages_by_field_in_order():
    problems = [
        Problem("name", "name.required"),
        Problem("settings", "password.not_text", part="password"),
        Problem("name", "name.too_long", {"most": 255}),
        Problem("settings", "header.value_too_long", {"name": "X-A"}, "custom_headers"),
    ]
    assert english_errors(problems) == {
        "name": ["Enter a name.", "At most 255 characters."],
        "settings": ["The password must be text.", "The value of header 'X-A' is too long."],
    }
    assert english_errors([]) == {}
