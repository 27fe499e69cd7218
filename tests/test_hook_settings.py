"""The hook rules shared by the admin panel and the API."""

from __future__ import annotations

import pytest

from webapp.hook_settings import CLEARED, apply_hook_settings, clean_hook_settings, same_origin
from webapp.models import Hook
from webapp.validation import english_errors

VALID = {
    "name": "CRM",
    "endpoint": "https://crm.example.org/api/submissions",
    "export_type": "json",
    "auth_level": "basic_auth",
    "settings": {"username": "crm", "password": "p@ss word!", "custom_headers": {"X-Api-Key": "k"}},
    "subset_fields": ["household", "q3", "q3"],
    "payload_template": '{"data": %SUBMISSION%}',
    "email_notification": True,
    "notification_emails": ["Ops@Example.org"],
}


def test_valid_settings_are_cleaned_and_applied(ctx):
    cleaned, problems = clean_hook_settings(VALID)
    assert problems == []
    assert cleaned["subset_fields"] == ["household", "q3"]
    assert cleaned["notification_emails"] == ["Ops@example.org"]
    hook = Hook(form_id=1)
    apply_hook_settings(hook, cleaned)
    # "@", " " and "!" are outside the ciphertext's alphabet: a match would be a leak.
    assert hook.password == "p@ss word!"
    assert hook.password_encrypted and "p@ss word!" not in hook.password_encrypted
    assert hook.custom_headers == {"X-Api-Key": "k"}


BAD = [
    ({"endpoint": "file:///etc/passwd"}, "endpoint", "http"),
    ({"endpoint": "gopher://example.org/"}, "endpoint", "gopher"),
    ({"endpoint": "http://127.0.0.1/hook"}, "endpoint", "127.0.0.1"),
    ({"endpoint": "http://user:pw@example.org/"}, "endpoint", "password"),
    ({"name": "  "}, "name", "name"),
    ({"export_type": "csv"}, "export_type", "json"),
    ({"settings": {"custom_headers": {"X-Bad\r\nInjected": "v"}}}, "settings", "not valid"),
    ({"settings": {"custom_headers": {"X-Ok": "a\r\nInjected: 1"}}}, "settings", "line breaks"),
    ({"settings": {"custom_headers": {"Host": "evil"}}}, "settings", "set by Formhooks"),
    ({"auth_level": "basic_auth", "settings": {"username": "u"}}, "settings", "password"),
    ({"subset_fields": "q1"}, "subset_fields", ""),
    ({"subset_fields": ["a b"]}, "subset_fields", ""),
    ({"subset_fields": [f"q{i}" for i in range(501)]}, "subset_fields", ""),
    ({"payload_template": "{not json %SUBMISSION%}"}, "payload_template", ""),
    ({"payload_template": '{"a": "%SUBMISSION%"}'}, "payload_template", ""),
    ({"export_type": "xml", "payload_template": '{"a": %SUBMISSION%}'}, "payload_template", "JSON"),
    ({"notification_emails": ["not-an-email"]}, "notification_emails", "not-an-email"),
    ({"active": "yes"}, "active", "true or false"),
    ({"colour": "red"}, "colour", "Unknown"),
]


@pytest.mark.parametrize("change,field,fragment", BAD, ids=[str(b[0])[:40] for b in BAD])
def test_bad_settings_are_refused_with_a_message_per_field(ctx, change, field, fragment):
    values = {**VALID, **change}
    if change.get("auth_level") == "basic_auth":
        values["settings"] = change["settings"]
    cleaned, problems = clean_hook_settings(values)
    errors = english_errors(problems)
    assert cleaned == {}
    assert field in errors, errors
    assert fragment.lower() in " ".join(errors[field]).lower()


def test_update_keeps_password_when_blank_and_checks_wrapper_against_new_format(ctx):
    hook = Hook(form_id=1)
    apply_hook_settings(hook, clean_hook_settings(VALID)[0])
    cleaned, problems = clean_hook_settings({"settings": {"password": ""}}, hook=hook)
    assert problems == [] and "password" not in cleaned
    cleaned, problems = clean_hook_settings({"export_type": "xml"}, hook=hook)
    # the existing wrapper does not fit XML
    assert [(p.field, p.code) for p in problems] == [("payload_template", "wrapper.json_only")]


def test_switching_to_basic_auth_needs_credentials(ctx):
    hook = Hook(form_id=1)
    apply_hook_settings(hook, clean_hook_settings({"name": "n", "endpoint": "https://e.org/"})[0])
    cleaned, problems = clean_hook_settings({"auth_level": "basic_auth"}, hook=hook)
    assert cleaned == {} and "password" in " ".join(english_errors(problems)["settings"])


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ("https://crm.example.org/a", "https://CRM.example.org:443/b?x=1", True),
        ("http://crm.example.org/a", "http://crm.example.org:80/b", True),
        ("https://crm.example.org/a", "http://crm.example.org/a", False),
        ("https://crm.example.org/a", "https://crm.example.org:8443/a", False),
        ("https://crm.example.org/a", "https://crm.example.org.evil.example/a", False),
        ("https://crm.example.org/a", "https://evil.example/a", False),
    ],
)
def test_same_origin(old, new, same):
    assert same_origin(old, new) is same


def test_a_new_origin_needs_the_secrets_again(ctx):
    hook = Hook(form_id=1)
    apply_hook_settings(hook, clean_hook_settings(VALID)[0])
    moved = {"endpoint": "https://evil.example/collect"}
    cleaned, problems = clean_hook_settings(moved, hook=hook)
    assert [(p.field, p.code, p.part) for p in problems] == [
        ("settings", "password.new_origin", "password")
    ]
    assert "enter the password again" in " ".join(english_errors(problems)["settings"])
    # The password given again: the stored header value (not re-entered) is cleared.
    again = {**moved, "settings": {"password": "new pass"}}
    cleaned, problems = clean_hook_settings(again, hook=hook)
    assert problems == []
    assert cleaned["custom_headers"] == {} and cleaned[CLEARED] == ["X-Api-Key"]
    # A header sent with its kept value (blank in the panel, masked in the API) is cleared too;
    # a new value is kept.
    headers = {"X-Api-Key": "k", "X-Other": "typed"}
    values = {**again, "settings": {"password": "new pass", "custom_headers": headers}}
    cleaned, problems = clean_hook_settings(values, hook=hook, kept_headers={"X-Api-Key"})
    assert cleaned["custom_headers"] == {"X-Other": "typed"}
    # The same origin keeps everything.
    same = {"endpoint": "https://crm.example.org/other/path"}
    cleaned, problems = clean_hook_settings(same, hook=hook)
    assert problems == [] and CLEARED not in cleaned and "custom_headers" not in cleaned
    apply_hook_settings(hook, cleaned)
    assert hook.password == "p@ss word!" and hook.custom_headers == {"X-Api-Key": "k"}
