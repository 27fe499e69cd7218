"""Hostile hook settings: refused at save, a clear message per field, nothing stored.

The rules are in README ("What a hook sends") and docs/security.md.

Each case goes through `clean_hook_settings` (the rules the panel and the API
share) and through the API (`POST /api/v1/forms/<uid>/hooks`, and `PATCH` of
an existing hook), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import json
import string
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.helpers import SECRET_KEY
from tests.security.conftest import HOSTILE
from tests.security.hostile_data import json_objects, render, walk, xml_trees
from webapp import hook_settings
from webapp.delivery.addresses import address_refusal
from webapp.delivery.formats import PayloadError, build_payload
from webapp.delivery.headers import HEADER_RULES, sendable
from webapp.delivery.sender import DeliveryError, Sender, SSRFError
from webapp.delivery.wrapper import PLACEHOLDER, apply_payload_template
from webapp.extensions import db
from webapp.ingest.parsing import IngestError, parse_body
from webapp.models import ApiToken, Hook, User
from webapp.validation import english_errors
from webapp.xforms import parse_xml


def clean_hook_settings(values: dict, **kwargs) -> tuple[dict, dict[str, list[str]]]:
    """The hook rules, their problems worded as the API words them: {field: [messages]}."""
    cleaned, problems = hook_settings.clean_hook_settings(values, **kwargs)
    return cleaned, english_errors(problems)


ENDPOINT = "https://crm.example.org/hook"

BAD_ENDPOINTS = [
    "file:///etc/passwd",
    "FILE:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.org/x",
    "dict://example.org:11211/",
    "ldap://example.org/",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "//example.org/hook",
    "example.org/hook",
    "http:/\\example.org",
    "http://127.0.0.1/",
    "HTTP://127.0.0.1:8080/",
    "http://10.0.0.1/",
    "http://10.255.255.254:443/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fd00::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://example.org\\@127.0.0.1/",
    "http://user:pw@example.org/",
    "http://exa mple.org/",
    "http://example.org/\r\nX-Injected: 1",
    "http://example.org/\x00",
    "http://example.org:0/",
    "http://example.org:99999/",
    "http://[not-an-ip]/",
    "http://%31%32%37.0.0.1/",
    "https://" + "a" * 3000 + ".org/",
    "",
    None,
    42,
    ["http://example.org/"],
]

# Alternative spellings of 127.0.0.1 that inet_aton and IDNA accept: refused
# when saved and when sent (below).
NUMERIC_LOOPBACKS = [
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://017700000001/",
    "http://①②⑦.0.0.1/",
    "http://127。0。0。1/",
]

BAD_HEADERS = [
    {"X-A\r\nX-Injected": "1"},
    {"X-A\n": "1"},
    {"X-A\x00": "1"},
    {"X A": "1"},
    {"X:A": "1"},
    {"": "1"},
    {"Ä": "1"},
    {"X-A": "a\r\nX-Injected: 1"},
    {"X-A": "a\rb"},
    {"X-A": "a\nb"},
    {"X-A": "a\x00b"},
    {"Host": "internal.example"},
    {"content-length": "1"},
    {"Transfer-Encoding": "chunked"},
    {"Connection": "close"},
    {"X-Formhooks-Delivery": "forged"},
    {"X-A": "a" * 5000},
    {"X-A": 1},
    {"X-A": None},
    {"X-A": ["a"]},
    {f"X-{i}": "1" for i in range(51)},
    ["X-A"],
    "X-A: 1",
]

TEMPLATE_BIG = '{"data": %SUBMISSION%, "pad": "' + "x" * (1024 * 1024) + '"}'
BAD_TEMPLATES = [
    TEMPLATE_BIG,
    '{"data": "%SUBMISSION%"}',  # in a string
    '"%SUBMISSION%"',
    '{"data": "before %SUBMISSION% after"}',
    '{"%SUBMISSION%": 1}',  # in a key
    '{"k": {"%SUBMISSION%": [%SUBMISSION%]}}',
    "{%SUBMISSION%: 1}",
    "%SUBMISSION%%SUBMISSION%",
    '{"data": %SUBMISSION%',
    '{"data": %SUBMISSION%}}',
    '{"data": %SUBMISSION%,}',
    '{"data": %SUBMISSION%} trailing',
    "{'data': %SUBMISSION%}",
    '{"data": %submission%}',
    '{"data": %SUBMISSION }',
    '{"a": "\x00", "data": %SUBMISSION%}',
    "not json at all",
    12,
    ["{}"],
]
GOOD_TEMPLATES = [
    PLACEHOLDER,
    '{"data": %SUBMISSION%}',
    '{"a": {"b": [%SUBMISSION%, {"c": %SUBMISSION%}]}, "d": %SUBMISSION%}',
    '  {"source": "kobo",\n  "data": %SUBMISSION%}  ',
    '{"fixed": true}',
    '{"text": "100% sure, %SUBMISSION without the end"}',
    '{"a": "\\u0000", "data": %SUBMISSION%}',
]


def bad_cases() -> list[tuple[str, dict, str]]:
    """(what, values, field that must carry the error)."""
    cases = [(f"endpoint {e!r}"[:80], {"endpoint": e}, "endpoint") for e in BAD_ENDPOINTS]
    cases += [
        (f"header {h!r}"[:80], {"settings": {"custom_headers": h}}, "settings") for h in BAD_HEADERS
    ]
    cases += [
        (f"template {t!r}"[:80], {"payload_template": t}, "payload_template") for t in BAD_TEMPLATES
    ]
    cases += [
        (
            "template with xml",
            {"payload_template": '{"d": %SUBMISSION%}', "export_type": "xml"},
            "payload_template",
        ),
        (
            "10,000 subset tags",
            {"subset_fields": [f"q{i}" for i in range(10_000)]},
            "subset_fields",
        ),
        ("10,000 equal subset tags", {"subset_fields": ["q"] * 10_000}, "subset_fields"),
        ("subset tag too long", {"subset_fields": ["q" * 256]}, "subset_fields"),
        ("subset tag with space", {"subset_fields": ["a b"]}, "subset_fields"),
        ("subset tag with newline", {"subset_fields": ["a\nb"]}, "subset_fields"),
        ("subset tag slashes", {"subset_fields": ["/a", "a/", "a//b"]}, "subset_fields"),
        ("subset not a list", {"subset_fields": "q1,q2"}, "subset_fields"),
        ("subset of lists", {"subset_fields": [["q1"]]}, "subset_fields"),
        ("name too long", {"name": "n" * 256}, "name"),
        ("name blank", {"name": " \t\n"}, "name"),
        ("name not text", {"name": {"a": 1}}, "name"),
        ("username with colon", {"settings": {"username": "a:b", "password": "p"}}, "settings"),
        ("settings not an object", {"settings": "user:pw"}, "settings"),
        ("unknown setting", {"settings": {"token": "x"}}, "settings"),
        ("export type", {"export_type": "json\x00"}, "export_type"),
        ("auth level", {"auth_level": "digest"}, "auth_level"),
        ("active not bool", {"active": "yes"}, "active"),
        (
            "email header injection",
            {"notification_emails": ["a@b.org\r\nBcc: x@y.org"]},
            "notification_emails",
        ),
        (
            "10,000 emails",
            {"notification_emails": ["x@example.org"] * 10_000},
            "notification_emails",
        ),
        ("unknown field", {"script": "<script>alert(1)</script>"}, "script"),
    ]
    return cases


@pytest.fixture(scope="module")
def rules(database_urls, tmp_path_factory):
    """An app context for clean_hook_settings, which reads only the configuration.

    Module-scoped and on one database: these checks touch no table, so they
    run once, not once per database and test.
    """
    from webapp import create_app

    app = create_app(
        {
            "DATABASE_URL": database_urls["sqlite"],
            "SECRET_KEY": SECRET_KEY,
            "FORMHOOKS_INSTANCE_PATH": str(tmp_path_factory.mktemp("rules")),
            "SSRF_ALLOWED_NETWORKS": "",
            "MAIL_SERVER": "",
        }
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_for_networks(database_urls, tmp_path):
    """Make an app like `rules` with a given SSRF_ALLOWED_NETWORKS."""
    from webapp import create_app

    apps = []

    def make(networks: str):
        app = create_app(
            {
                "DATABASE_URL": database_urls["sqlite"],
                "SECRET_KEY": SECRET_KEY,
                "FORMHOOKS_INSTANCE_PATH": str(tmp_path),
                "SSRF_ALLOWED_NETWORKS": networks,
                "MAIL_SERVER": "",
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def check_errors(errors: dict, field: str, what: str, most: int = 60) -> None:
    """`field` has errors; every field's messages are few, short, clear texts."""
    assert field in errors, (what, errors)
    for messages in errors.values():
        assert 1 <= len(messages) <= most, (what, len(messages), messages[:3])
        for message in messages:
            assert isinstance(message, str) and 5 < len(message) <= 400, (what, message[:400])


def test_clean_hook_settings_refuses_hostile_values(rules, figures):
    for what, values, field in bad_cases():
        for base in ({"name": "CRM", "endpoint": ENDPOINT}, {}):
            cleaned, errors = clean_hook_settings({**base, **values})
            figures.add("hook settings tried")
            assert cleaned == {}, what
            check_errors(errors, field, what)


def test_good_templates_are_accepted(rules):
    for template in GOOD_TEMPLATES:
        cleaned, errors = clean_hook_settings(
            {"name": "CRM", "endpoint": ENDPOINT, "payload_template": template}
        )
        assert errors == {}, (template, errors)


# --------------------------------------------------------------------------
# Through the API: 400 with errors by field, nothing stored or changed
# --------------------------------------------------------------------------


@pytest.fixture
def api_token(app) -> str:
    with app.app_context():
        user = User(email="ada@example.org", role="admin")
        user.set_password("correct horse battery")
        db.session.add(user)
        _, plaintext = ApiToken.issue(user, name="tests")
        db.session.commit()
    return plaintext


def api_send(client, method: str, path: str, token: str, body):
    # Raw JSON with \\u escapes, so any string (even a lone surrogate) reaches the server.
    return client.open(
        path,
        method=method,
        data=json.dumps(body),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )


def stored_hooks(app) -> list[tuple]:
    with app.app_context():
        return [
            (h.name, h.endpoint, h.subset_fields, h.payload_template, h.custom_headers, h.username)
            for h in db.session.scalars(select(Hook).order_by(Hook.id))
        ]


def test_api_refuses_hostile_hook_settings(app, client, make, api_token, figures):
    form_uid, _ = make.form(owner_email="ada@example.org")
    path = f"/api/v1/forms/{form_uid}/hooks"
    kept = api_send(client, "POST", path, api_token, {"name": "Kept", "endpoint": ENDPOINT})
    assert kept.status_code == 201, kept.json
    hook_path = f"{path}/{kept.json['uid']}"
    before = stored_hooks(app)
    for what, values, field in bad_cases():
        for method, target in (("POST", path), ("PATCH", hook_path)):
            base = {"name": "CRM", "endpoint": ENDPOINT} if method == "POST" else {}
            response = api_send(client, method, target, api_token, {**base, **values})
            figures.add("hook settings tried")
            if response.status_code == 413:  # the 1 MB template: over the API's body limit
                assert "error" in response.json or "errors" in response.json, what
                continue
            assert response.status_code == 400, (what, method, response.status_code)
            check_errors(response.json["errors"], field, what)
    assert stored_hooks(app) == before


BASIC = {"auth_level": "basic_auth"}
# (what, values, the field that must carry the error, or None when accepting is harmless)
STORAGE_CASES = [
    ("header value NUL", {"settings": {"custom_headers": {"X-A": "v\x00"}}}, "settings"),
    ("template NUL", {"payload_template": '{"a": "\x00", "d": %SUBMISSION%}'}, "payload_template"),
    ("email surrogate", {"notification_emails": ["a\ud800@example.org"]}, "notification_emails"),
    ("email NUL", {"notification_emails": ["a\x00@example.org"]}, "notification_emails"),
    # Stored encrypted or as escaped JSON: accepting them harms nothing.
    ("password NUL", {**BASIC, "settings": {"username": "u", "password": "p\x00"}}, None),
    ("subset NUL", {"subset_fields": ["q\x00"]}, None),
    ("subset surrogate", {"subset_fields": ["q\ud800"]}, None),
]
NUL_CASES = [
    ("name NUL", {"name": "CRM\x00"}, "name"),
    ("username NUL", {**BASIC, "settings": {"username": "u\x00", "password": "p"}}, "settings"),
]
SURROGATE_CASES = [
    ("name", {"name": "CRM\ud800"}, "name"),
    ("endpoint", {"endpoint": ENDPOINT + "/\ud800"}, "endpoint"),
    ("username", {**BASIC, "settings": {"username": "u\ud800", "password": "p"}}, "settings"),
    ("password", {**BASIC, "settings": {"username": "u", "password": "p\ud800"}}, "settings"),
    ("header value", {"settings": {"custom_headers": {"X-A": "v\ud800"}}}, "settings"),
    ("template", {"payload_template": '{"a": "\ud800", "d": %SUBMISSION%}'}, "payload_template"),
]


def storage_problems(app, client, make, api_token, figures, cases) -> list[str]:
    """POST each case; what went wrong (a 500, no 400 where one is due, a row stored)."""
    form_uid, _ = make.form(owner_email="ada@example.org")
    path = f"/api/v1/forms/{form_uid}/hooks"
    problems = []
    for what, values, field in cases:
        figures.add("hook settings tried")
        before = stored_hooks(app)
        try:
            response = api_send(
                client, "POST", path, api_token, {"name": "CRM", "endpoint": ENDPOINT, **values}
            )
        except Exception as exc:  # in tests a 500 propagates as the exception
            problems.append(f"{what}: 500 ({exc!r})"[:200])
            continue
        if field is None:
            if response.status_code not in (201, 400):
                problems.append(f"{what}: {response.status_code}")
        elif response.status_code != 400 or field not in response.json.get("errors", {}):
            problems.append(f"{what}: {response.status_code} {response.get_data()[:100]!r}")
        elif stored_hooks(app) != before:
            problems.append(f"{what}: refused, but a hook was stored")
    return problems


def test_hook_settings_that_would_break_storage_or_sending(app, client, make, api_token, figures):
    """Strings the database or the HTTP client cannot take: refused at save, never a 500."""
    assert storage_problems(app, client, make, api_token, figures, STORAGE_CASES) == []


def test_nul_in_hook_text_fields_is_refused(app, client, make, api_token, figures):
    assert storage_problems(app, client, make, api_token, figures, NUL_CASES) == []


def test_lone_surrogates_in_hook_settings_are_refused(app, client, make, api_token, figures):
    assert storage_problems(app, client, make, api_token, figures, SURROGATE_CASES) == []


# --------------------------------------------------------------------------
# Properties: anything accepted at save is safe to send
# --------------------------------------------------------------------------


@HOSTILE
@given(
    url=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda scheme, host, rest: f"{scheme}://{host}{rest}",
            st.sampled_from(["http", "https", "HTTP", "file", "gopher", "ftp", "ws", ""]),
            st.one_of(
                st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
                st.ip_addresses(v=4).map(lambda ip: f"[::ffff:{ip}]"),
                st.text(string.ascii_letters + string.digits + ".-_%@:[]\\", max_size=20),
            ),
            st.text(max_size=10),
        ),
    )
)
def test_accepted_endpoints_are_http_and_not_internal_literals(rules, figures, url):
    figures.add("hook settings tried")
    cleaned, errors = clean_hook_settings({"name": "CRM", "endpoint": url})
    if errors:
        check_errors(errors, "endpoint", url)
        return
    parts = urlsplit(cleaned["endpoint"])
    assert parts.scheme.lower() in ("http", "https")
    assert "@" not in parts.netloc
    try:
        address = ipaddress.ip_address((parts.hostname or "").strip("[]"))
    except ValueError:
        return  # a name: checked when resolved, at send time
    assert address_refusal(address, []) is None, url


header_names = st.text(string.ascii_letters + string.digits + "-_!#$%&'*+.^`|~", min_size=1)
header_values = st.text(
    # Other control characters: test_control_characters_in_header_values_are_refused_at_save.
    st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\t\r\n\x00"),
    max_size=30,
)


@HOSTILE
@given(headers=st.dictionaries(header_names | st.text(max_size=8), header_values, max_size=4))
def test_accepted_headers_can_be_sent(rules, figures, headers):
    """A header accepted at save builds a request without a line break or control character."""
    figures.add("hook settings tried")
    cleaned, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "settings": {"custom_headers": headers}}
    )
    if errors:
        check_errors(errors, "settings", repr(headers))
        return
    built = sendable(cleaned["custom_headers"])  # raises HeaderError if unusable
    for name, value in built.items():
        text = value.encode("latin-1").decode("utf-8")  # as it goes on the wire
        assert not any(ch in text for ch in "\r\n\x00"), (name, value)


json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=6)
json_trees = st.recursive(
    json_leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
submissions = st.dictionaries(
    st.text(max_size=8), st.text(max_size=8) | st.integers() | json_trees, max_size=4
)


@st.composite
def templates(draw) -> str:
    """JSON texts with %SUBMISSION% put anywhere: for values, in strings, in keys, around."""
    text = json.dumps(draw(json_trees), ensure_ascii=draw(st.booleans()))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(text)))
        text = text[:where] + PLACEHOLDER + text[where:]
    if draw(st.booleans()):
        text = f'{{"data": {PLACEHOLDER}, "wrapped": {text}}}'
    return text


@HOSTILE
@given(template=templates(), submission=submissions)
def test_accepted_templates_always_give_json(rules, figures, template, submission):
    """Whatever the submission holds (quotes, backslashes, unicode), the result is JSON."""
    figures.add("hook settings tried")
    _, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "payload_template": template}
    )
    if errors:
        check_errors(errors, "payload_template", template)
        return
    sent = json.loads(apply_payload_template(template, submission))
    if PLACEHOLDER in template:
        assert submission in list(walk(sent)), (template, sent)


# --------------------------------------------------------------------------
# The send-time guard holds where the save-time check does not reach
# --------------------------------------------------------------------------


def test_numeric_loopback_spellings_are_refused_when_sent(figures):
    with Sender(timeout=2) as sender:
        for url in [*NUMERIC_LOOPBACKS, "http://localhost/"]:
            figures.add("hook settings tried")
            with pytest.raises(DeliveryError) as refused:
                sender.post(url, b"{}", headers={})
            assert refused.value.permanent, url
            if url.isascii():
                assert isinstance(refused.value, SSRFError), (url, refused.value.message)


# --------------------------------------------------------------------------
# Found by these tests, in files this suite does not own: kept visible
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["[" * 30_000 + "]" * 30_000, '{"a": ' + "1" * 5000 + ', "d": %SUBMISSION%}'],
    ids=["30,000-deep", "5,000-digit number"],
)
def test_template_too_deep_or_too_long_a_number_is_refused(rules, template):
    _, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "payload_template": template}
    )
    check_errors(errors, "payload_template", template[:40])


@pytest.mark.parametrize(
    "template",
    ['{"a": NaN, "d": %SUBMISSION%}', '{"a": -Infinity, "d": %SUBMISSION%}', '{"a": 1e999}'],
)
def test_template_with_non_finite_numbers_is_refused(rules, template):
    _, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "payload_template": template}
    )
    check_errors(errors, "payload_template", template)


@pytest.mark.parametrize("value", ["a\x01b", "a\x1bb", "a\x7fb", "\x08"])
def test_control_characters_in_header_values_are_refused_at_save(rules, value):
    """The sender refuses them (a permanent failure of every delivery): refuse them at save."""
    _, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "settings": {"custom_headers": {"X-A": value}}}
    )
    check_errors(errors, "settings", repr(value))


@pytest.mark.parametrize("url", NUMERIC_LOOPBACKS)
def test_numeric_loopback_spellings_are_refused_at_save(rules, url):
    cleaned, errors = clean_hook_settings({"name": "CRM", "endpoint": url})
    assert cleaned == {}
    check_errors(errors, "endpoint", url)
    [message] = errors["endpoint"]
    host = urlsplit(url).hostname
    assert message.startswith(f"{host} is another way of writing 127.0.0.1, a loopback address;")
    assert "SSRF_ALLOWED_NETWORKS" in message


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://10.1/", "10.0.0.1"),
        ("http://0xa9fea9fe/latest/meta-data/", "169.254.169.254"),
        ("http://0/", "0.0.0.0"),
        ("http://0300.0250.1/", "192.168.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
    ],
)
def test_other_numeric_spellings_are_read_as_the_resolver_reads_them(rules, url, address):
    _, errors = clean_hook_settings({"name": "CRM", "endpoint": url})
    [message] = errors["endpoint"]
    assert f"another way of writing {address}," in message, message


@pytest.mark.parametrize(
    "url",
    [
        "http://0127.0.0.1/",  # octal 0127 is 87: a public address
        "http://1.2.3/",  # 1.2.0.3
        "http://0x7f000001.example.org/",
        "http://127.0.0.1.nip.example/",
        "https://bücher.example/hook",
    ],
)
def test_names_and_public_numeric_spellings_are_accepted(rules, url):
    cleaned, errors = clean_hook_settings({"name": "CRM", "endpoint": url})
    assert errors == {}
    assert cleaned["endpoint"] == url


def test_numeric_spellings_follow_ssrf_allowed_networks(app_for_networks):
    """As at send time: an address inside SSRF_ALLOWED_NETWORKS is allowed, however written."""
    with app_for_networks("127.0.0.0/8").app_context():
        for url in ["http://2130706433/", "http://0x7f000001/", "http://127.1/"]:
            assert clean_hook_settings({"name": "CRM", "endpoint": url})[1] == {}, url
        _, errors = clean_hook_settings({"name": "CRM", "endpoint": "http://10.1/"})
        assert "10.0.0.1, a private address" in errors["endpoint"][0]
        # Not sendable at all (urllib3 does not map them), allowed address or not.
        for url in ["http://①②⑦.0.0.1/", "http://127。0。0。1/"]:
            _, errors = clean_hook_settings({"name": "CRM", "endpoint": url})
            assert errors["endpoint"] == [f"The host name {urlsplit(url).hostname!r} is not valid."]


def test_10000_bad_subset_tags_give_a_short_answer(rules):
    _, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "subset_fields": ["a b"] * 10_000}
    )
    check_errors(errors, "subset_fields", "10,000 tags with spaces", most=3)
    assert errors["subset_fields"] == [
        "At most 500 subset fields are allowed (10000 given).",
        "Subset field 'a b' must not contain whitespace.",
    ]
    _, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "subset_fields": [f"q {i}" for i in range(10_000)]}
    )
    check_errors(errors, "subset_fields", "10,000 different tags with spaces", most=3)
    assert errors["subset_fields"][1] == (
        "Subset fields 'q 0', 'q 1', 'q 2' and 9997 more must not contain whitespace."
    )


def test_bad_subset_tags_of_every_kind_give_one_message_per_kind(rules):
    tags = [1, 2, "", "", "x" * 256] * 2000 + ["a b", "/a", "a/", "a//b"] * 1000
    _, errors = clean_hook_settings({"name": "CRM", "endpoint": ENDPOINT, "subset_fields": tags})
    check_errors(errors, "subset_fields", "14,000 bad tags of six kinds", most=7)
    assert errors["subset_fields"][1:] == [
        "Subset fields #1, #2, #6 and 3997 more must be strings.",
        "Subset fields #3, #4, #8 and 3997 more are empty.",
        "Subset field 'a b' must not contain whitespace.",
        "Subset fields '/a', 'a/' must not start or end with '/'.",
        "Subset field 'a//b' must not contain '//'.",
        "Subset fields #5, #10, #15 and 1997 more are too long (at most 255 characters).",
    ]


def test_new_setting_messages_are_shown_in_french(rules):
    from flask_babel import force_locale

    from webapp.admin.i18n import translate

    problems = [
        *hook_settings.clean_hook_settings({"name": "CRM", "endpoint": "http://0x7f000001/"})[1],
        *hook_settings.clean_hook_settings(
            {
                "name": "CRM",
                "endpoint": ENDPOINT,
                "subset_fields": [f"q {i}" for i in range(600)] + ["/a", "a/", "a//b", "b//c"],
            }
        )[1],
        *hook_settings.clean_hook_settings(
            {"name": "CRM", "endpoint": ENDPOINT, "subset_fields": ["a b", "c d", "/x", "/y"]}
        )[1],
    ]
    with rules.test_request_context(), force_locale("fr"):
        french = [translate(problem) for problem in problems]
    assert french == [
        "0x7f000001 est une autre écriture de 127.0.0.1, une adresse interne (a loopback "
        "address) : Formhooks n’envoie pas vers les adresses internes "
        "(voir SSRF_ALLOWED_NETWORKS).",
        "Au plus 500 champs peuvent être choisis (604 donnés).",
        "Les champs 'q 0', 'q 1', 'q 2' et 597 autres ne doivent pas contenir d’espaces.",
        "Les champs '/a', 'a/' ne doivent ni commencer ni finir par « / ».",
        "Les champs 'a//b', 'b//c' ne doivent pas contenir « // ».",
        "Les champs 'a b', 'c d' ne doivent pas contenir d’espaces.",
        "Les champs '/x', '/y' ne doivent ni commencer ni finir par « / ».",
    ]


def test_api_body_nested_too_deeply_is_refused(app, client, make, api_token):
    form_uid, _ = make.form(owner_email="ada@example.org")
    try:
        response = client.post(
            f"/api/v1/forms/{form_uid}/hooks",
            data=b"[" * 100_000,
            headers={"Authorization": f"Token {api_token}", "Content-Type": "application/json"},
        )
    except RecursionError as exc:  # in tests a 500 propagates as the exception
        pytest.fail(f"500: {exc!r}")
    assert response.status_code == 400
    assert stored_hooks(app) == []


subset_tags = st.lists(
    st.text(st.sampled_from("ab/_.-é1"), min_size=1, max_size=5).filter(
        lambda t: t[0] != "/" and t[-1] != "/" and "//" not in t
    ),
    max_size=3,
)


@HOSTILE
@given(
    submission=json_objects | xml_trees.map(lambda tree: render(("data", [tree]))),
    export_type=st.sampled_from(["json", "xml"]),
    subset=subset_tags,
    template=st.sampled_from([None, '{"d": %SUBMISSION%}', PLACEHOLDER, "[%SUBMISSION%, 1]"]),
    form_uid=st.sampled_from(["aZ7kqP3wXbLmN2vR8tYs5d", "1starts-with-a-digit", "x y", ""]),
)
def test_accepted_submissions_build_for_any_valid_settings(
    figures, submission, export_type, subset, template, form_uid
):
    """What ingest accepts, any hook settings can send: valid JSON or XML, or a clear
    PayloadError (a permanent failure of that log), never another exception, which
    would fail the whole batch of the drain job."""
    figures.add("payload builds tried")
    is_xml = isinstance(submission, str)
    body = submission.encode() if is_xml else json.dumps(submission).encode()
    try:
        parsed = parse_body("xml" if is_xml else "json", "", body)
    except IngestError:
        return
    try:
        sent, content_type = build_payload(
            content_type=parsed.content_type,
            body=parsed.body,
            data=parsed.data,
            form_uid=form_uid,
            export_type=export_type,
            subset_fields=subset,
            payload_template=template if export_type == "json" else None,
        )
    except PayloadError as exc:
        assert str(exc)
        return
    if content_type == "application/json":
        json.loads(sent)
    else:
        parse_xml(sent)


@pytest.mark.parametrize("name", sorted(HEADER_RULES))
def test_every_reserved_header_is_refused_at_save_and_dropped_at_send(rules, name):
    """One table (webapp.delivery.headers) for the save-time rule and the sender."""
    cleaned, errors = clean_hook_settings(
        {"name": "CRM", "endpoint": ENDPOINT, "settings": {"custom_headers": {name.title(): "v"}}}
    )
    assert any("set by Formhooks" in message for message in errors.get("settings", [])), errors
    assert sendable({name.upper(): "v", "X-Other": "w"}) == {"X-Other": "w"}
