"""English and French: complete catalogue, French pages, dates and messages."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tests.admin.admin_support import post_submission

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "webapp/translations/fr/LC_MESSAGES/messages.po"
MO = ROOT / "webapp/translations/fr/LC_MESSAGES/messages.mo"
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "_l": None,
    "N_": None,
}


def catalog():
    with PO.open("rb") as fh:
        return read_po(fh, locale="fr")


def test_every_french_message_is_translated_and_compiled():
    cat = catalog()
    for message in cat:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), message.id
        assert not message.fuzzy, message.id
    compiled = io.BytesIO()
    write_mo(compiled, cat)
    assert MO.read_bytes() == compiled.getvalue(), "run: pybabel compile -d webapp/translations"


def test_every_string_of_the_panel_is_in_the_catalogue():
    known = {m.id for m in catalog() if m.id}
    sources = [
        (ROOT / "webapp/admin", [("**.py", "python")]),
        (ROOT / "templates", [("email/**", "ignore"), ("**.html", "jinja2")]),
    ]
    missing = []
    for directory, method_map in sources:
        for _file, _line, message, _comments, _context in extract_from_dir(
            directory, method_map, keywords=KEYWORDS
        ):
            if message not in known:
                missing.append(message)
    assert missing == [], "extract and translate: see babel.cfg"


def test_french_pages_dates_and_plurals(app, client, make, editor):
    uid, token = make.form("Enquête")
    make.hook(uid, name="CRM")
    post_submission(client, uid, token)
    editor.post("/language", {"language": "fr"})
    page = editor.get(f"/forms/{uid}").text
    assert '<html lang="fr">' in page
    assert "URL du webhook" in page and "Jeton" in page
    assert "Créé le" in page and " 20" in page  # a French date, e.g. "28 nov. 2026"
    assert "1\u00a0en attente" in page or "1 en attente" in page
    page = editor.get(f"/forms/{uid}/submissions").text
    assert "1 soumission reçue" in page and "à l’instant" in page


def test_hook_setting_errors_are_shown_in_french(editor, make):
    uid, _ = make.form()
    editor.post("/language", {"language": "fr"})
    page = editor.post(
        f"/forms/{uid}/hooks/new",
        {
            "name": "",
            "endpoint": "ftp://example.org/x",
            "export_type": "json",
            "auth_level": "no_auth",
            "payload_template": '{"a": %SUBMISSION%',
            "subset_fields": "/q1",
        },
    ).text
    assert "Saisissez un nom." in page
    assert "Seules les URL http:// et https:// sont acceptées, pas ftp://." in page
    assert "n’est pas du JSON valide" in page and "à la ligne 1" in page
    assert "ne doit ni commencer ni finir par" in page
    assert "Rien n’a été enregistré" in page


def shown_errors(page: str, field: str) -> str:
    """The messages shown under `field` (unescaped), or "" when none."""
    match = re.search(rf'<ul class="errors" id="{field}-error">(.*?)</ul>', page, re.S)
    return html.unescape(match.group(1)) if match else ""


def test_bad_wrapper_header_and_url_are_explained_in_french_by_their_fields(editor, make):
    uid, _ = make.form()
    editor.post("/language", {"language": "fr"})
    response = editor.post(
        f"/forms/{uid}/hooks/new",
        {
            "name": "CRM",
            "endpoint": "http://10.0.0.1/hook",
            "export_type": "json",
            "auth_level": "no_auth",
            "payload_template": '{"data": "%SUBMISSION%"}',
            "custom_headers-0-name": "Host",
            "custom_headers-0-value": "evil.example",
        },
    )
    assert response.status_code == 400
    page = response.text
    assert "10.0.0.1 est une adresse interne (a private address)\u00a0: Formhooks n’envoie pas" in (
        shown_errors(page, "endpoint")
    )
    assert "%SUBMISSION% doit tenir lieu de valeur JSON, pas se trouver dans une chaîne JSON" in (
        shown_errors(page, "payload_template")
    )
    assert "L’en-tête 'Host' est fixé par Formhooks et ne peut pas être changé." in (
        shown_errors(page, "headers")
    )
    assert shown_errors(page, "auth") == ""


def test_form_errors_from_wtforms_are_in_french(editor):
    editor.post("/language", {"language": "fr"})
    page = editor.post("/forms/new", {"name": ""}).text
    assert "Saisissez un nom." in page
