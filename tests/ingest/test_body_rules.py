"""Bodies the webhook refuses because a receiver could read them otherwise:
unpaired surrogates and duplicate JSON keys (docs/security.md, "Hostile input
at the webhook URL"). Each is refused with a 400 that names the problem, and
nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import DeliveryLog, Submission


def post(client, form_uid: str, token: str, body: bytes, content_type: str):
    return client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )


def stored(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Submission)),
            db.session.scalar(select(func.count()).select_from(DeliveryLog)),
        )


@pytest.fixture
def form(make):
    form_uid, token = make.form()
    make.hook(form_uid)
    return form_uid, token


def refused(app, client, form, body: bytes, content_type: str) -> str:
    """Post `body`, check it is refused with 400 and stores nothing; return the message."""
    response = post(client, *form, body, content_type)
    assert response.status_code == 400, (body[:80], response.get_data()[:300])
    assert stored(app) == (0, 0)
    return response.json["error"]


@pytest.mark.parametrize(
    ("body", "code_point"),
    [
        (b'{"a":"x\\ud800y"}', "\\ud800"),
        (b'{"a":"x\\udfff"}', "\\udfff"),  # a low surrogate alone
        (b'{"a":"\\ude00\\ud83d"}', "\\ude00"),  # a pair in the wrong order
        (b'{"g":{"list":["ok","\\ud83d"]}}', "\\ud83d"),  # at any depth
        (b'{"\\udbff":1}', "\\udbff"),  # in a key
    ],
)
def test_json_with_an_unpaired_surrogate_escape_is_refused(app, client, form, body, code_point):
    message = refused(app, client, form, body, "application/json")
    assert "unpaired surrogate" in message
    assert code_point in message


def test_a_surrogate_pair_is_one_character_and_accepted(app, client, form):
    response = post(client, *form, b'{"smile":"\\ud83d\\ude00"}', "application/json")
    assert response.status_code == 201, response.json
    with app.app_context():
        assert db.session.get(Submission, response.json["id"]).data == {"smile": "\U0001f600"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"a=x%ED%A0%80y", "application/x-www-form-urlencoded"),  # UTF-8 of U+D800
        (b"<d><a>x&#xD800;y</a></d>", "application/xml"),
        (b"<d><a>x\xed\xa0\x80y</a></d>", "application/xml"),
        (
            '<?xml version="1.0" encoding="UTF-16"?><d><a>x</a></d>'.encode("utf-16-le").replace(
                b"x\x00", b"\x00\xd8"
            ),
            "application/xml",
        ),  # a lone UTF-16 code unit
    ],
)
def test_urlencoded_and_xml_bodies_cannot_carry_a_surrogate(app, client, form, body, content_type):
    # These were already refused as malformed: the check guards that it stays so.
    message = refused(app, client, form, body, content_type)
    assert "Malformed" in message or "UTF-8" in message


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"meta/instanceID":"uuid:a","meta/instanceID":"uuid:b"}', "'meta/instanceID'"),
        (b'{"a":1,"b":2,"a":1}', "'a'"),  # even with the same value
        (b'{"meta":{"instanceID":"uuid:a","instanceID":"uuid:b"}}', "'instanceID'"),
        (b'{"r":[{"q":1},{"q":2,"q":3}]}', "'q'"),  # in a repeat item
        (b'{"deep":' + b'{"x":' * 50 + b'{"k":1,"k":2}' + b"}" * 50 + b"}", "'k'"),
    ],
)
def test_json_with_a_duplicate_key_is_refused_naming_it(app, client, form, body, key):
    message = refused(app, client, form, body, "application/json")
    assert "duplicate key" in message
    assert key in message


def test_a_long_duplicate_key_is_named_briefly(app, client, form):
    key = "k" * 5000
    body = f'{{"{key}":1,"{key}":2}}'.encode()
    message = refused(app, client, form, body, "application/json")
    assert "duplicate key" in message and len(message) < 300


def test_the_same_key_in_different_objects_is_not_a_duplicate(app, client, form):
    body = b'{"q":1,"g":{"q":2},"r":[{"q":3},{"q":4}]}'
    response = post(client, *form, body, "application/json")
    assert response.status_code == 201, response.json
    assert stored(app) == (1, 1)
