"""Hostile input at the webhook URL, through the Flask test client (README "A quick tour").

Every input is checked against the same properties (`Target.check`):

* never a 5xx (in tests an unhandled exception propagates, which fails too);
* a refusal (4xx) says what is wrong and stores nothing: no Submission and no
  DeliveryLog row;
* an accepted body (201) is stored byte for byte (for multipart: the raw
  bytes of the xml_submission_file part), with one pending log for the
  form's one active hook, and its stored data is what the stored body parses
  to (JSON: json.loads(body) == data).

Random inputs come from hypothesis with fixed, derandomized examples
(tests/security/hostile_data.py), so CI sees the same inputs every run.
"""

from __future__ import annotations

import io
import json
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.security.hostile_data import (
    HOSTILE,
    json_objects,
    json_values,
    render,
    walk,
    xml_trees,
)
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission
from webapp.xforms import parse_xml, xml_to_json

JSON_TYPES = ["application/json", "application/json; charset=utf-8", "application/vnd.x+json"]
XML_TYPES = ["application/xml", "text/xml", "text/xml; charset=iso-8859-1", "application/atom+xml"]
URLENCODED = "application/x-www-form-urlencoded"
ALL_TYPES = [
    *JSON_TYPES,
    *XML_TYPES,
    URLENCODED,
    "multipart/form-data; boundary=XX",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/mixed; boundary=XX",
    "APPLICATION/JSON",
    "application/json;;;",
    "text/plain",
    "application/octet-stream",
    "*/*",
    "/",
    "json",
    "",
]


# What the webhook URL makes of each Content-Type (README "A quick tour"): stated
# here by hand, so the tests check the code's answer instead of re-deriving it.
EXPECTED_KIND = {
    **dict.fromkeys(JSON_TYPES, "json"),
    **dict.fromkeys(XML_TYPES, "xml"),
    URLENCODED: "urlencoded",
    "multipart/form-data; boundary=XX": "multipart",
    "multipart/form-data": "multipart",
    "multipart/form-data; boundary=": "multipart",
    "multipart/mixed; boundary=XX": "refused",
    "APPLICATION/JSON": "json",
    "application/json;;;": "json",
    "text/plain": "refused",
    "application/octet-stream": "refused",
    "*/*": "refused",
    "/": "refused",
    "json": "refused",
    "": "refused",
}
assert set(EXPECTED_KIND) == set(ALL_TYPES)


class Target:
    """A form with one active hook, and the checks made after every post."""

    def __init__(self, app, make, figures) -> None:
        self.app = app
        self.figures = figures
        self.form_uid, self.token = make.form()
        make.hook(self.form_uid)
        self.client = app.test_client()
        self.url = f"/api/v1/forms/{self.form_uid}/submissions"

    def counts(self) -> tuple[int, int]:
        with self.app.app_context():
            return (
                db.session.scalar(select(func.count()).select_from(Submission)),
                db.session.scalar(select(func.count()).select_from(DeliveryLog)),
            )

    def post(
        self,
        body: bytes,
        content_type: str | None,
        *,
        expected: bytes | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs,
    ):
        """Post `body`; `expected` is what must be stored if it is accepted (default: body)."""
        # A script's post: JSON answers, multipart included (docs/openrosa.md).
        all_headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            **(headers or {}),
        }
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        before = self.counts()
        if "input_stream" not in kwargs:
            kwargs["data"] = body
        response = self.client.post(self.url, headers=all_headers, **kwargs)
        self.figures.add("ingest inputs")
        self.figures.add(f"ingest answers {response.status_code}")
        kind = kind or EXPECTED_KIND.get(content_type or "")  # None: random header text
        self.check(response, before, body if expected is None else expected, kind)
        return response

    def check(self, response, before, expected: bytes, kind: str | None) -> None:
        status = response.status_code
        text = response.get_data()[:300]
        assert status < 500, (status, text)
        assert response.is_json, (status, text)
        after = self.counts()
        if status >= 400:
            assert status in (400, 411, 413, 415), (status, text)
            message = response.json.get("error")
            assert isinstance(message, str) and len(message) > 10, (status, text)
            assert after == before, f"a refused request stored something: {text!r}"
            return
        assert status in (200, 201), (status, text)
        with self.app.app_context():
            stored = db.session.get(Submission, response.json["id"])
            if status == 201:
                assert after == (before[0] + 1, before[1] + 1)
                body, data = stored.body, stored.data
            else:  # a re-post of a known instance id (the same body changes nothing)
                assert after == before
                body, data = stored.current_body, stored.current_data
        assert body == expected, (body[:200], expected[:200])
        if stored.source_format == "xml":
            assert data == xml_to_json(parse_xml(body))
        elif kind == "json":
            assert json.loads(body) == data
        self.figures.add("ingest accepted and checked byte for byte")


@pytest.fixture
def target(app, make, figures) -> Target:
    return Target(app, make, figures)


# --------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------


@HOSTILE
@given(
    value=st.one_of(json_objects, json_objects, json_values),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 1, "\t"]),
    bom=st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf"]),
    content_type=st.sampled_from(JSON_TYPES),
)
def test_random_json_is_stored_intact_or_refused(
    target, value, ensure_ascii, indent, bom, content_type
):
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    # A lone surrogate written raw gives invalid UTF-8: hostile too.
    body = bom + text.encode("utf-8", "surrogatepass")
    response = target.post(body, content_type)
    if acceptable(value):
        assert response.status_code == 201, response.json


def acceptable(value) -> bool:
    """Whether a JSON value is a submission the webhook must accept."""
    if not isinstance(value, dict) or {"meta", "meta/instanceID", "_uuid"} & set(value):
        return False  # not an object, or an instance id that may be invalid
    texts = strings(value)
    if any("\x00" in text for text in texts):
        return False
    if any(is_surrogate(text) for text in texts):
        return False  # raw: invalid UTF-8; escaped: refused as not characters
    return all(x == x and x not in (INF, -INF) for x in numbers(value))


INF = float("inf")


def strings(value):
    return [item for item in walk(value, keys=True) if isinstance(item, str)]


def numbers(value):
    return [item for item in walk(value, keys=True) if isinstance(item, float)]


def is_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@st.composite
def mutated_json(draw) -> bytes:
    body = bytearray(json.dumps(draw(json_objects)).encode())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(body)))
        operation = draw(st.sampled_from(["cut", "insert", "replace", "delete"]))
        if operation == "cut":
            del body[where:]
        elif operation == "insert":
            body[where:where] = draw(st.binary(min_size=1, max_size=4))
        elif operation == "replace" and where < len(body):
            body[where] = draw(st.integers(0, 255))
        elif where < len(body):
            del body[where]
    return bytes(body)


@HOSTILE
@given(body=st.one_of(mutated_json(), st.binary(max_size=200), st.text().map(str.encode)))
def test_malformed_json_is_refused_cleanly(target, body):
    target.post(body, "application/json")


MALFORMED_JSON = [
    b"",
    b"   \r\n\t ",
    b"null",
    b"[]",
    b'"just a string"',
    b"12",
    b"{",
    b"}",
    b'{"a": 1,}',
    b"{'a': 1}",
    b'{"a": 1} {"b": 2}',
    b'{"a": NaN}',
    b'{"a": -Infinity}',
    b'{"a": 1e400}',  # parses as float("inf"), which PostgreSQL's json refuses
    b'{"a": -1e400}',
    b'{"a": [1e999, 2]}',
    b'{"a": ' + b"1" * 5000 + b"}",  # more digits than Python converts
    b'{"a": "\\u0000"}',
    b'{"\\u0000": 1}',
    b'{"a": "\xff"}',
    b'{"a": "\xc0\xaf"}',  # overlong UTF-8
    b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8
    '{"a": "é"}'.encode("utf-16"),
    '{"a": "é"}'.encode("utf-32"),
    '{"a": "é"}'.encode("latin-1"),
    b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b'{"a": ' + b'{"b": ' * 10_000 + b"1" + b"}" * 10_000 + b"}",
    b"[" * 100_000,
    b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}",  # under Python's recursion limit
    b'{"a": ' + b'{"b": ' * 950 + b"1" + b"}" * 950 + b"}",
    b'{"meta/instanceID": ["not", "a", "string"]}',
    b'{"meta/instanceID": "' + b"x" * 300 + b'"}',
    b'{"meta/instanceID": "a\\nb"}',
    b'{"meta/instanceID": "   "}',
    b'{"meta": {"instanceID": true}}',
    b'{"_uuid": {"a": 1}}',
    b'{"a": 1, "a": 2}',  # a duplicate key: which one would a receiver take?
    b'{"lone": "\\ud800"}',  # an escaped surrogate without its pair
]


def test_malformed_json_samples_are_refused(target):
    for body in MALFORMED_JSON:
        response = target.post(body, "application/json")
        assert response.status_code == 400, (body[:60], response.json)


def test_json_edge_cases_that_are_accepted_round_trip(target):
    samples = [
        b'\xef\xbb\xbf{"bom": true}',
        b'{"big": ' + b"9" * 4000 + b', "tiny": 5e-324, "neg0": -0.0}',
        b'{"pair": "\\ud83d\\ude00"}',
        b'{"deep": ' + b"[" * 60 + b"1" + b"]" * 60 + b"}",
        json.dumps({f"k{i}": i for i in range(20_000)}).encode(),
        json.dumps({"group1/q2": "x", "meta": {"instanceID": "uuid:nested-1"}}).encode(),
    ]
    for body in samples:
        response = target.post(body, "application/json")
        assert response.status_code == 201, (body[:60], response.json)


# --------------------------------------------------------------------------
# Any bytes with any content type; lying Content-Length
# --------------------------------------------------------------------------

header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=60,
)


@HOSTILE
@given(
    body=st.binary(max_size=300),
    content_type=st.one_of(st.sampled_from(ALL_TYPES), header_text),
    idempotency_key=st.none() | header_text,
)
def test_random_bytes_with_each_content_type(target, body, content_type, idempotency_key):
    headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    response = target.post(body, content_type, headers=headers)
    if EXPECTED_KIND.get(content_type) == "refused":
        assert response.status_code == 415, response.json


@HOSTILE
@given(
    value=json_objects,
    content_type=st.sampled_from(["application/json", "application/xml", URLENCODED]),
    shift=st.integers(-40, 40),
)
def test_lying_content_length(target, value, content_type, shift):
    if content_type == "application/xml":
        body = b"<data><a>1</a><b>" + json.dumps(value).encode().replace(b"<", b"") + b"</b></data>"
    elif content_type == URLENCODED:
        body = urlencode({"a": json.dumps(value)}).encode()
    else:
        body = json.dumps(value).encode()
    declared = max(len(body) + shift, 0)
    response = target.post(
        body,
        content_type,
        expected=body[:declared],  # what the request says its body is
        environ_overrides={"CONTENT_LENGTH": str(declared)},
    )
    if declared > len(body):
        assert response.status_code == 400, response.json  # the body ended early


def test_nonsense_content_length(target):
    for declared in ["-1", "abc", "", "+5", "1e3", "0x10", " 7", "99999999999999999999999"]:
        response = target.post(
            b'{"a": 1}', "application/json", environ_overrides={"CONTENT_LENGTH": declared}
        )
        assert 400 <= response.status_code < 500, (declared, response.json)


def test_body_larger_than_the_limit_without_content_length(app, make, make_app, figures):
    small = Target(make_app(MAX_SUBMISSION_BYTES="1000"), make, figures)
    for body in [b"[" * 5000, b" " * 2000 + b"{}", b"<d>" + b"a" * 2000 + b"</d>"]:
        response = small.post(
            body,
            "application/json" if body[:1] != b"<" else "application/xml",
            input_stream=io.BytesIO(body),
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert response.status_code == 413, response.json


# --------------------------------------------------------------------------
# urlencoded
# --------------------------------------------------------------------------

form_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@HOSTILE
@given(pairs=st.lists(st.tuples(form_text, form_text), max_size=8))
def test_urlencoded_fields_round_trip(target, pairs):
    body = urlencode(pairs).encode()
    response = target.post(body, URLENCODED)
    if response.status_code == 201:
        expected: dict = {}
        for key, value in pairs:
            if key in expected:
                previous = expected[key]
                expected[key] = (
                    [*previous, value] if isinstance(previous, list) else [previous, value]
                )
            else:
                expected[key] = value
        with target.app.app_context():
            assert db.session.get(Submission, response.json["id"]).data == expected
    elif pairs and not any("\x00" in k + v for k, v in pairs):
        assert any(k in ("meta/instanceID", "_uuid") for k, _ in pairs), response.json


def test_urlencoded_with_many_repeated_keys_is_linear(target):
    """A key repeated 200,000 times must not take quadratic time (it took hours)."""
    body = b"&".join([b"a=1"] * 200_000)
    response = target.post(body, URLENCODED)
    assert response.status_code == 201
    with target.app.app_context():
        assert len(db.session.get(Submission, response.json["id"]).data["a"]) == 200_000


# --------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------


@HOSTILE
@given(
    tree=xml_trees,
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-16", "iso-8859-1"]),
    declaration=st.booleans(),
    content_type=st.sampled_from(XML_TYPES),
)
def test_generated_xml_instances_round_trip(target, tree, encoding, declaration, content_type):
    text = render(("data", [tree]))
    if encoding == "iso-8859-1":
        assume(all(ord(c) < 256 for c in text))
    if declaration or encoding != "utf-8":
        text = f'<?xml version="1.0" encoding="{encoding}"?>\n' + text
    body = text.encode(encoding)
    response = target.post(body, content_type)
    if "meta" not in text and "_uuid" not in text:
        assert response.status_code == 201, response.json


class Canary:
    """A loopback HTTP server that counts the requests an XML parser might make."""

    def __init__(self) -> None:
        self.hits = 0
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                canary.hits += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'<!ENTITY leak "LEAKED">')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def hostile_xml(canary_url: str) -> list[tuple[str, bytes]]:
    laughs = b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    for level in range(1, 10):
        previous = "lol" if level == 1 else f"lol{level - 1}"
        laughs += f' <!ENTITY lol{level} "{("&" + previous + ";") * 10}">\n'.encode()
    laughs += b"]>\n<lolz>&lol9;</lolz>"
    return [
        ("billion laughs", laughs),
        (
            "quadratic blowup",
            b'<!DOCTYPE d [<!ENTITY a "' + b"x" * 50_000 + b'">]><d>' + b"&a;" * 1000 + b"</d>",
        ),
        (
            "external entity file",
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
        ),
        (
            "external entity http",
            b'<!DOCTYPE d [<!ENTITY x SYSTEM "' + canary_url.encode() + b'/x">]><d>&x;</d>',
        ),
        (
            "parameter entity",
            b'<!DOCTYPE d [<!ENTITY % p SYSTEM "'
            + canary_url.encode()
            + b'/p"> %p;]><d>&leak;</d>',
        ),
        ("external dtd", b'<!DOCTYPE d SYSTEM "' + canary_url.encode() + b'/dtd"><d>&leak;</d>'),
        ("internal entity", b'<!DOCTYPE d [<!ENTITY a "aaaa">]><d>&a;</d>'),
        ("doctype only", b"<!DOCTYPE d><d/>"),
        ("undeclared entity", b"<d>&nope;</d>"),
        ("nul reference", b"<d><a>&#0;</a></d>"),
        ("control reference", b"<d><a>&#1;</a></d>"),
        ("10,000-deep", b"<d>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</d>"),
        ("101-deep", b"<a>" * 101 + b"</a>" * 101),
        ("10,000-deep unclosed", b"<a>" * 10_000),
        ("invalid utf-8", b"<d><a>\xff\xfe</a></d>"),
        ("overlong utf-8", b"<d><a>\xc0\xbc</a></d>"),
        ("utf-8 surrogate", b"<d><a>\xed\xa0\x80</a></d>"),
        ("truncated utf-8", b"<d><a>\xe2\x82</a></d>"),
        ("utf-8 in a latin-1 lie", b'<?xml version="1.0" encoding="ascii"?><d>\xc3\xa9</d>'),
        ("unknown encoding", b'<?xml version="1.0" encoding="x-nonsense"?><d/>'),
        ("utf-7", b'<?xml version="1.0" encoding="utf-7"?><d><a>+AOk-</a></d>'),
        ("duplicate attribute", b'<d a="1" a="2"/>'),
        ("two roots", b"<d/><e/>"),
        ("trailing garbage", b"<d/>garbage"),
        ("text only", b"just text"),
        ("empty", b""),
        ("whitespace", b" \n\t"),
        ("unclosed", b"<d><a>1</a>"),
        ("mismatched", b"<d><a>1</b></d>"),
        ("bad name", b"<1d/>"),
        ("unbound prefix", b"<x:d/>"),
        ("raw control character", b"<d>\x01</d>"),
        ("raw nul", b"<d>\x00</d>"),
    ]


ACCEPTED_XML = [
    ("100-deep", b"<a>" * 100 + b"</a>" * 100),
    (
        "xinclude is not processed",
        b'<d xmlns:xi="http://www.w3.org/2001/XInclude"><a>1</a>'
        b'<xi:include href="file:///etc/passwd" parse="text"/></d>',
    ),
    ("cdata and comments", b"<d><!-- c --><a><![CDATA[<b>&amp;]]></a><?pi x?></d>"),
    ("utf-16 with bom", '<?xml version="1.0" encoding="UTF-16"?><d><a>é</a></d>'.encode("utf-16")),
    ("latin-1", '<?xml version="1.0" encoding="ISO-8859-1"?><d><a>café</a></d>'.encode("latin-1")),
    (
        "100,000 attributes",
        b"<d " + b" ".join(b'a%d="%d"' % (i, i) for i in range(100_000)) + b"/>",
    ),
    ("many siblings", b"<d>" + b"<r><a>1</a></r>" * 5_000 + b"</d>"),
    (
        "many namespaces",
        b"<d " + b" ".join(b'xmlns:n%d="u:%d"' % (i, i) for i in range(500)) + b"/>",
    ),
]


XML_WAYS = ["application/xml", "text/xml", "multipart file", "multipart field"]


def test_hostile_xml_is_refused_without_side_effects(target):
    """Each document as an XML body and as an OpenRosa part (a file, and a field)."""
    canary = Canary()
    try:
        for how in XML_WAYS:
            for name, body in hostile_xml(canary.url):
                response = post_xml(target, body, how)
                assert response.status_code in (400, 413), (how, name, response.json)
            # The big accepted documents: one body way and one part way suffice.
            for name, body in ACCEPTED_XML if how in XML_WAYS[::3] else ACCEPTED_XML[:5]:
                response = post_xml(target, body, how)
                assert response.status_code == 201, (how, name, response.json)
        assert canary.hits == 0, "an XML parser fetched an external resource"
    finally:
        canary.close()
    with target.app.app_context():
        for stored in db.session.scalars(select(Submission)):
            assert "root:" not in json.dumps(stored.data), "a local file was read"


def post_xml(target: Target, body: bytes, how: str):
    if not how.startswith("multipart"):
        return target.post(body, how)
    return post_multipart(
        target, *multipart([("xml_submission_file", how == "multipart file", body)])
    )


# --------------------------------------------------------------------------
# Multipart (OpenRosa)
# --------------------------------------------------------------------------

XML_PART = (
    b'<?xml version="1.0"?><data id="f"><a>1</a><meta><instanceID>x</instanceID></meta></data>'
)


def multipart(
    parts: list[tuple[str | None, bool, bytes]], boundary: str = "XyZ-b0undary", *, lf_only=False
) -> tuple[bytes, str, bytes | None]:
    """(body, content type, the xml_submission_file part) for parts (name, is_file, data)."""
    newline = b"\n" if lf_only else b"\r\n"
    out = b""
    xml = None
    for name, is_file, data in parts:
        out += b"--" + boundary.encode() + newline
        disposition = b"Content-Disposition: form-data"
        if name is not None:
            disposition += b'; name="' + name.encode() + b'"'
        if is_file:
            disposition += b'; filename="part.bin"'
        out += disposition + newline
        if is_file:
            out += b"Content-Type: application/octet-stream" + newline
        out += newline + data + newline
        if name == "xml_submission_file":
            xml = data
    out += b"--" + boundary.encode() + b"--" + newline
    return out, f"multipart/form-data; boundary={boundary}", xml


def post_multipart(target: Target, body: bytes, content_type: str, xml: bytes | None):
    return target.post(body, content_type, expected=xml if xml is not None else b"<none>")


def test_odd_multipart_bodies(target):
    one = [("xml_submission_file", True, XML_PART)]
    body, content_type, xml = multipart(one)
    cases = [
        # (what, body, content type, accepted?)
        ("no boundary", body, "multipart/form-data", False),
        ("empty boundary", body, "multipart/form-data; boundary=", False),
        ("wrong boundary", body, "multipart/form-data; boundary=other", False),
        ("non-ascii boundary", body, "multipart/form-data; boundary=é", False),
        ("empty body", b"", content_type, False),
        ("no parts", b"--XyZ-b0undary--\r\n", content_type, False),
        ("random bytes", b"\x00\xff" * 100, content_type, False),
        ("lf line breaks", *multipart(one, lf_only=True)[:2], True),
        ("quoted boundary", body, 'multipart/form-data; boundary="XyZ-b0undary"', True),
        ("preamble and epilogue", b"preamble\r\n" + body + b"epilogue", content_type, True),
    ]
    for cut in (1, 10, 40, 80, len(body) // 2, len(body) - 30, len(body) - 12):
        cases.append((f"truncated at {cut}", body[:cut], content_type, False))
    no_disposition = body.replace(b"Content-Disposition: form-data", b"X-Other: 1")
    cases.append(("no content-disposition", no_disposition, content_type, False))
    bad_header = body.replace(b"application/octet-stream", b"\xff\xfe")
    cases.append(("non-utf-8 part header", bad_header, content_type, False))
    for what, data, ctype, accepted in cases:
        response = post_multipart(target, data, ctype, XML_PART)
        assert (response.status_code in (200, 201)) == accepted, (what, response.json)


def test_multipart_part_counts_and_duplicates(target):
    photo = ("photo.jpg", True, b"\xff\xd8" + bytes(range(256)) * 4)
    cases = [
        ("field, not file", [("xml_submission_file", False, XML_PART)], True),
        # Collect puts up to 101 attachments and `*isIncomplete*` in one post.
        ("with 998 other parts", [("xml_submission_file", True, XML_PART)] + [photo] * 998, True),
        (
            "with 1000 other parts",
            [("xml_submission_file", True, XML_PART)] + [photo] * 1000,
            False,
        ),
        ("10,000 parts", [("f", False, b"x")] * 10_000, False),
        ("no xml part", [photo], False),
        ("unnamed part", [(None, True, XML_PART)], False),
        (
            "two xml files",
            [("xml_submission_file", True, XML_PART), ("xml_submission_file", True, b"<x/>")],
            False,
        ),
        (
            "a file and a field",
            [("xml_submission_file", True, XML_PART), ("xml_submission_file", False, b"<x/>")],
            False,
        ),
        ("xml part not xml", [("xml_submission_file", True, b"{}")], False),
        ("xml part empty", [("xml_submission_file", True, b"")], False),
    ]
    for what, parts, accepted in cases:
        body, content_type, xml = multipart(parts)
        response = post_multipart(target, body, content_type, xml)
        assert (response.status_code == 201) == accepted, (what, response.json)
        if response.status_code == 201:
            assert response.json["created"] is True
            with target.app.app_context():
                db.session.execute(db.delete(DeliveryLog))
                db.session.execute(db.delete(Submission))
                db.session.commit()


def test_xml_part_as_field_or_file_is_stored_byte_for_byte(target):
    """Bytes that are not UTF-8 (a Latin-1 instance) must not be re-decoded."""
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><d><a>café</a></d>'.encode("latin-1")
    for number, as_file in enumerate([True, False]):
        body = latin.replace(b"<d>", b"<d><meta><instanceID>n%d</instanceID></meta>" % number)
        response = post_multipart(target, *multipart([("xml_submission_file", as_file, body)]))
        assert response.status_code == 201, response.json
        with target.app.app_context():
            stored = db.session.get(Submission, response.json["id"])
            assert stored.data["a"] == "café"
    # Invalid UTF-8 is refused whether the part is a file or a field.
    for as_file in (True, False):
        body, content_type, xml = multipart([("xml_submission_file", as_file, b"<d>\xff</d>")])
        assert post_multipart(target, body, content_type, xml).status_code == 400


part_data = st.one_of(
    st.just(XML_PART),
    st.binary(max_size=80),
    xml_trees.map(lambda tree: render(("data", [tree])).encode()),
)


@HOSTILE
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(["xml_submission_file", "photo", "xml_submission_file.xml", None]),
            st.booleans(),
            part_data,
        ),
        max_size=5,
    ),
    boundary=st.text(
        string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=70
    ),
    cut=st.none() | st.integers(0, 400),
)
def test_random_multipart_bodies(target, parts, boundary, cut):
    for _, _, data in parts:
        assume(boundary.encode() not in data)
    body, content_type, xml = multipart(parts, boundary)
    if cut is not None:
        body = body[:cut]
    response = post_multipart(target, body, content_type, xml)
    xml_parts = [p for p in parts if p[0] == "xml_submission_file"]
    if len(xml_parts) != 1:
        assert response.status_code == 400, response.json
