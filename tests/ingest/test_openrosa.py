"""The webhook URL as an OpenRosa server (docs/openrosa.md), driven by clients
that upload as ODK Collect and Enketo do (tests/ingest/openrosa_clients.py).
Each assertion names the client rule it checks.
"""

from __future__ import annotations

import io
import json
import time

import pytest
from sqlalchemy import func, select

from tests.helpers import fixture_bytes
from tests.ingest.openrosa_clients import (
    AuthRequested,
    Collect,
    Part,
    UploadFailed,
    enketo_auth_header,
    enketo_headers,
    flask_send,
    multipart,
    response_message,
)
from webapp.extensions import db
from webapp.ingest import openrosa
from webapp.models import DeliveryLog, Submission

INSTANCE = fixture_bytes("odk_instance.xml")
INSTANCE_ID = "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"
PHOTO = ("1700000000000.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40, "image/jpeg")


def webhook(form_uid: str, scheme: str = "http") -> str:
    return f"{scheme}://localhost/api/v1/forms/{form_uid}/submissions"


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Submission)),
            db.session.scalar(select(func.count()).select_from(DeliveryLog)),
        )


def stored(app) -> Submission:
    with app.app_context():
        return db.session.scalar(select(Submission))


def assert_openrosa_answer(response_headers, body: bytes) -> str:
    """OpenRosa HTTP: X-OpenRosa-Version on every answer; Submission API: an
    OpenRosaResponse body (text/xml) whose <message> Collect's
    ResponseMessageParser.java reads.
    """
    assert response_headers["X-OpenRosa-Version"] == "1.0"
    assert response_headers["Content-Type"] == "text/xml; charset=utf-8"
    assert b'<OpenRosaResponse xmlns="http://openrosa.org/http/response">' in body
    message = response_message(body)
    assert message, body
    return message


# --- HEAD ----------------------------------------------------------------------------------


def test_head_with_the_token_in_the_url_answers_204_with_the_openrosa_headers(app, client, make):
    form_uid, token = make.form()
    collect = Collect(flask_send(client))
    url = collect.submission_url(webhook(form_uid) + f"?token={token}")
    status, headers, body = collect.call("HEAD", url)
    # OpenRosaServerInstanceUploader.kt: only 204 lets the upload go on (2xx else fails).
    assert status == 204 and body == b""
    # Form Submission API: X-OpenRosa-Version and X-OpenRosa-Accept-Content-Length,
    # which Collect reads as the size at which it splits an upload.
    assert headers["X-OpenRosa-Version"] == "1.0"
    limit = app.config["MAX_SUBMISSION_BYTES"]
    assert int(headers["X-OpenRosa-Accept-Content-Length"]) == limit - 128 * 1024
    # The HEAD no longer falls through to the management API (Token challenge).
    assert "Token" not in headers.get("WWW-Authenticate", "")
    assert counts(app) == (0, 0)


def test_head_without_a_good_token_challenges_basic_and_digest(app, client, make):
    form_uid, token = make.form()
    for query in ("", "?token=wrong"):
        response = client.head(webhook(form_uid) + query, headers={"X-OpenRosa-Version": "1.0"})
        assert response.status_code == 401
        challenges = response.headers.getlist("WWW-Authenticate")
        # Basic first (Collect over https, Enketo), then Digest (Collect over http:
        # OkHttpOpenRosaServerClientProvider registers only digest there).
        assert challenges[0] == 'Basic realm="Formhooks", charset="UTF-8"'
        assert challenges[1].startswith('Digest realm="Formhooks", qop="auth", algorithm=MD5')
        assert response.headers["X-OpenRosa-Version"] == "1.0"
    response = client.head(webhook("aNoSuchForm") + f"?token={token}")
    assert response.status_code == 404


# --- Collect's whole upload ----------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_collect_with_the_token_in_submission_url_uploads_without_a_challenge(
    app, client, make, scheme
):
    form_uid, token = make.form()
    make.hook(form_uid)
    collect = Collect(flask_send(client))  # no credentials saved
    action = webhook(form_uid, scheme) + f"?token={token}"  # XLSForm submission_url
    message = collect.upload(action, INSTANCE, [PHOTO])
    # No 401 anywhere: Collect sends credentials only after a challenge.
    assert [status for _, status, _ in collect.exchanges] == [204, 201]
    # getUrlToSubmitTo appended &deviceID=...: extra query parameters are accepted.
    assert "&deviceID=collect%3A" in collect.submission_url(action)
    assert message == "Submission received. It will be forwarded to 1 service(s)."
    assert stored(app).body == INSTANCE and stored(app).instance_id == INSTANCE_ID
    assert counts(app) == (1, 1)


def test_collect_over_http_answers_the_digest_challenge(app, client, make):
    form_uid, token = make.form()
    collect = Collect(flask_send(client), username="enumerator1", password=token)
    collect.upload(webhook(form_uid), INSTANCE, [PHOTO])
    # HEAD 401 -> Digest -> 204; the POST reuses the cached nonce (nc 2) -> 201.
    assert collect.exchanges == [
        ("HEAD", 401, "none"),
        ("HEAD", 204, "Digest"),
        ("POST", 201, "Digest"),
    ]
    assert collect.nc == 2
    assert counts(app) == (1, 0)


def test_collect_over_https_answers_the_basic_challenge(app, client, make):
    form_uid, token = make.form()
    collect = Collect(flask_send(client), username="enumerator1", password=token)
    collect.upload(webhook(form_uid, "https"), INSTANCE, [PHOTO])
    # Over https Basic is registered and its challenge comes first.
    assert collect.exchanges == [
        ("HEAD", 401, "none"),
        ("HEAD", 204, "Basic"),
        ("POST", 201, "Basic"),
    ]
    assert counts(app) == (1, 0)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_collect_without_credentials_or_with_a_wrong_password_asks_for_them(
    app, client, make, scheme
):
    form_uid, _ = make.form()
    for password in ("", "not-the-token"):
        collect = Collect(flask_send(client), username="enumerator1", password=password)
        # A 401 on HEAD: OpenRosaServerInstanceUploader asks for credentials
        # (FormUploadAuthRequestedException); nothing was posted.
        with pytest.raises(AuthRequested):
            collect.upload(webhook(form_uid, scheme), INSTANCE, [PHOTO])
        # The authenticator tried once and gave up (no loop).
        assert [method for method, _, _ in collect.exchanges] == ["HEAD", "HEAD"]
    assert counts(app) == (0, 0)


def test_a_split_upload_answers_201_to_every_part(app, make, make_app):
    """Each part carries the instance again and the later ones are known instances:
    OkHttpConnection stops at the first answer that is not 201 or 202.
    """
    small = make_app(MAX_SUBMISSION_BYTES=str(400 * 1024))
    form_uid, token = make.form()
    make.hook(form_uid)
    photos = [(f"photo{n}.jpg", bytes([n]) * 120_000, "image/jpeg") for n in range(6)]
    collect = Collect(flask_send(small.test_client()), username="e", password=token)
    message = collect.upload(webhook(form_uid), INSTANCE, photos)
    accept = openrosa.accept_content_length(400 * 1024)  # 2 photos fit, not 3
    assert [len(post) for post in collect.posts] == [4, 4, 3]  # xml + 2 photos (+ incomplete)
    assert all(post[-1].name == "*isIncomplete*" for post in collect.posts[:-1])
    assert sum(len(p.data) for p in collect.posts[0] if p.name != "*isIncomplete*") <= accept
    assert [s for m, s, _ in collect.exchanges if m == "POST"] == [201, 201, 201]
    assert message == "Submission received (already known: stored as an update of it)."
    # One submission, delivered once.
    assert counts(app) == (1, 1)


def test_posts_built_to_the_announced_size_fit_the_limit(app, make, make_app):
    """Collect counts only the files against X-OpenRosa-Accept-Content-Length; the
    multipart framing of its largest post (101 files) must still fit the limit.
    """
    limit = 1024 * 1024
    small = make_app(MAX_SUBMISSION_BYTES=str(limit))
    form_uid, token = make.form()
    accept = openrosa.accept_content_length(limit)
    # 250 files filling the announced size to the byte: posts of 101, 101 and 48 files.
    size = (accept - len(INSTANCE)) // 101
    names = [f"{'long-file-name-' * 10}{n:04}.jpg" for n in range(250)]
    photos = [(name, b"\x00" * size, "image/jpeg") for name in names]
    collect = Collect(flask_send(small.test_client()), username="e", password=token)
    collect.upload(webhook(form_uid) + f"?token={token}", INSTANCE, photos)
    assert [len(post) for post in collect.posts] == [103, 103, 49]
    assert len(multipart(collect.posts[0])[0]) <= limit
    assert [s for m, s, _ in collect.exchanges if m == "POST"] == [201, 201, 201]
    assert counts(app) == (1, 0)


def test_a_resend_after_a_lost_answer_answers_201_and_sends_nothing_more(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    first = Collect(flask_send(client), username="e", password=token)
    first.upload(webhook(form_uid), INSTANCE, [PHOTO])
    # The answer was lost: the instance is still "failed" on the device, which
    # uploads it again later (a new client, a new challenge).
    again = Collect(flask_send(client), username="e", password=token)
    message = again.upload(webhook(form_uid), INSTANCE, [PHOTO])
    # 200 would be "Network login failure? Again?" (OpenRosaServerInstanceUploader.kt).
    assert again.exchanges[-1] == ("POST", 201, "Digest")
    assert "already known" in message
    assert counts(app) == (1, 1)
    # The same body again changes nothing stored (README, "Answers").
    assert stored(app).edit_count == 0


def test_an_expired_nonce_gets_a_stale_challenge_and_one_retry(app, client, make):
    form_uid, token = make.form()
    collect = Collect(flask_send(client), username="e", password=token)
    collect.upload(webhook(form_uid), INSTANCE)
    # Drive the clock: the nonce the client caches was made NONCE_LIFETIME + 1 s ago.
    with app.test_request_context():
        old = openrosa.make_nonce(form_uid, time.time() - openrosa.NONCE_LIFETIME - 1)
    collect.digest_params = {**collect.digest_params, "nonce": old}
    collect.exchanges.clear()
    collect.upload(webhook(form_uid), INSTANCE)
    # okhttp-digest retries a Digest refusal only when the challenge says stale=true.
    assert collect.exchanges == [
        ("HEAD", 401, "Digest"),
        ("HEAD", 204, "Digest"),
        ("POST", 201, "Digest"),
    ]


def test_digest_responses_that_are_not_right_are_refused(app, client, make):
    form_uid, token = make.form()
    other_uid, other_token = make.form(name="Other")
    url = webhook(form_uid)
    collect = Collect(flask_send(client), username="e", password=token)
    with app.test_request_context():
        fresh = openrosa.make_nonce(form_uid, time.time())
        cases = {
            "forged nonce": fresh[:-1] + ("0" if fresh[-1] != "0" else "1"),
            "another form's nonce": openrosa.make_nonce(other_uid, time.time()),
            "a nonce from the future": openrosa.make_nonce(form_uid, time.time() + 3600),
        }
    params = {"realm": "Formhooks", "qop": "auth"}
    for what, nonce in cases.items():
        header = collect._digest("HEAD", url, {**params, "nonce": nonce})
        response = client.head(url, headers={"Authorization": header})
        assert response.status_code == 401, what
        assert "stale=true" not in response.headers.getlist("WWW-Authenticate")[1], what
    # Right nonce, but for another URI, another method, or another form's token.
    wrong = {
        "uri": collect._digest("HEAD", url + "?x=1", {**params, "nonce": fresh}),
        "method": collect._digest("POST", url, {**params, "nonce": fresh}),
    }
    collect.password = other_token
    wrong["password"] = collect._digest("HEAD", url, {**params, "nonce": fresh})
    for what, header in wrong.items():
        assert client.head(url, headers={"Authorization": header}).status_code == 401, what
    collect.password = token
    right = collect._digest("HEAD", url, {**params, "nonce": fresh})
    assert client.head(url, headers={"Authorization": right}).status_code == 204


# --- Answers -------------------------------------------------------------------------------


def test_errors_keep_their_status_and_explain_themselves(app, client, make, make_app):
    form_uid, token = make.form()
    make.hook(form_uid)
    headers = {"X-OpenRosa-Version": "1.0"}

    def post(url, parts, app_client=client, **extra):
        body, content_type = multipart(parts)
        return app_client.post(
            url, data=body, headers={**headers, **extra, "Content-Type": content_type}
        )

    xml_part = Part("xml_submission_file", b"<data><a></data>", "submission.xml", "text/xml")
    cases = [
        ("malformed", post(webhook(form_uid) + f"?token={token}", [xml_part]), 400, "Malformed"),
        ("no xml part", post(webhook(form_uid) + f"?token={token}", []), 400, "xml_submission"),
        ("unknown form", post(webhook("aNoSuchForm") + f"?token={token}", [xml_part]), 404, ""),
        ("bad token", post(webhook(form_uid) + "?token=nope", [xml_part]), 401, "Invalid"),
        (
            "too large",
            post(
                webhook(form_uid) + f"?token={token}",
                [Part("xml_submission_file", INSTANCE), Part("p", b"x" * 2000, "p.jpg")],
                app_client=make_app(MAX_SUBMISSION_BYTES="1000").test_client(),
            ),
            413,
            "1000 bytes",
        ),
    ]
    for what, response, status, words in cases:
        # Collect shows <message> for any status but 200 and 401; Enketo reads
        # `OpenRosaResponse > message` of a 400.
        assert response.status_code == status, what
        assert words in assert_openrosa_answer(response.headers, response.get_data()), what
        assert response.headers["X-OpenRosa-Accept-Content-Length"], what
    assert counts(app) == (0, 0)


def test_json_clients_keep_their_answers(app, client, make):
    form_uid, token = make.form()
    bearer = {"Authorization": f"Bearer {token}"}
    body = fixture_bytes("nested.json")
    first = client.post(
        webhook(form_uid), data=body, headers=bearer, content_type="application/json"
    )
    again = client.post(
        webhook(form_uid), data=body, headers=bearer, content_type="application/json"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["created"] is False and "X-OpenRosa-Version" not in again.headers
    # A multipart post is OpenRosa's submission format: answered as OpenRosa
    # even without X-OpenRosa-Version (docs/openrosa.md).
    data = {"xml_submission_file": (io.BytesIO(INSTANCE), "s.xml", "text/xml")}
    response = client.post(webhook(form_uid), data=data, headers=bearer)
    assert response.status_code == 201 and response.headers["X-OpenRosa-Version"] == "1.0"
    assert "received" in assert_openrosa_answer(response.headers, response.get_data())
    # ... unless the script asks for JSON.
    data = {"xml_submission_file": (io.BytesIO(INSTANCE), "s.xml", "text/xml")}
    again = client.post(
        webhook(form_uid), data=data, headers={**bearer, "Accept": "application/json"}
    )
    assert again.status_code == 200 and again.json["created"] is False
    assert client.post(webhook(form_uid), data=body, content_type="application/json").json


def test_unauthenticated_bodies_are_read_to_the_end_and_nothing_more(app, make, make_app):
    """Form Submission API: the server consumes the entire POST before answering,
    so the client can read the 401; nothing is parsed or stored.
    """
    small = make_app(MAX_SUBMISSION_BYTES=str(300_000))
    form_uid, token = make.form()

    cases = [
        (200_000, True, 200_000),  # the whole body
        (1_000_000, False, 300_001),  # chunked, no length: the limit and one byte
        (1_000_000, True, 0),  # a length over the limit: the 401 comes at once
    ]
    for size, with_length, read in cases:
        stream = io.BytesIO(b"<" * size)  # not XML: parsing it would be a 400
        environ = {"wsgi.input_terminated": True}
        if not with_length:
            environ["CONTENT_LENGTH"] = ""
        response = small.test_client().post(
            webhook(form_uid),
            input_stream=stream,
            headers={"X-OpenRosa-Version": "1.0", "Content-Type": "text/xml"},
            environ_overrides=environ,
        )
        assert response.status_code == 401
        assert stream.tell() == read, (size, with_length)
    assert counts(app) == (0, 0)


# --- Enketo --------------------------------------------------------------------------------


def test_enketo_batches_with_its_headers_and_basic_auth(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    url = webhook(form_uid)
    # communicator.getAuthHeader: HEAD, then a header built from the 401's joined challenges.
    probe = client.head(url, headers=enketo_headers(INSTANCE_ID))
    assert probe.status_code == 401
    joined = ", ".join(probe.headers.getlist("WWW-Authenticate"))
    authorization = enketo_auth_header(
        joined, "enketo", token, "POST", url[len("http://localhost") :]
    )
    assert authorization.startswith("Basic ")
    # connection.js _prepareFormDataArray: every batch carries the instance and a CSRF field.
    batches = [[PHOTO], [("second.jpg", b"\xff\xd8" * 500, "image/jpeg")]]
    for batch in batches:
        parts = [Part("xml_submission_file", INSTANCE, "xml_submission_file", "text/xml")]
        parts += [Part(name, data, name, ctype) for name, data, ctype in batch]
        parts.append(Part("__csrf", b"abc123"))
        body, content_type = multipart(parts)
        response = client.post(
            url,
            data=body,
            headers={
                **enketo_headers(INSTANCE_ID),
                "Authorization": authorization,
                "Content-Type": content_type,
            },
        )
        # connection.js: `response.status !== 201 && response.status !== 202` is a failure.
        assert response.status_code == 201
        assert_openrosa_answer(response.headers, response.get_data())
    assert counts(app) == (1, 1)


def test_enketo_digest_from_the_joined_challenge(app, client, make):
    """request's Auth reads the last realm and the nonce from the joined header."""
    form_uid, token = make.form()
    url = webhook(form_uid)
    probe = client.head(url)
    digest_only = probe.headers.getlist("WWW-Authenticate")[1]
    joined = ", ".join(probe.headers.getlist("WWW-Authenticate"))
    for challenge in (digest_only, joined.replace("Basic", "Digest", 1)):
        header = enketo_auth_header(challenge, "enketo", token, "POST", url[16:])
        body, content_type = multipart([Part("xml_submission_file", INSTANCE, "x.xml")])
        response = client.post(
            url,
            data=body,
            headers={
                **enketo_headers(INSTANCE_ID),
                "Authorization": header,
                "Content-Type": content_type,
            },
        )
        assert response.status_code == 201, response.get_data()
    assert counts(app) == (1, 0)


def test_collect_never_sees_200_from_a_known_instance_posted_as_json_first(app, client, make):
    """An instance first posted by a script, then by Collect: 201 for Collect."""
    form_uid, token = make.form()
    body = json.dumps({"meta": {"instanceID": INSTANCE_ID}})
    client.post(webhook(form_uid) + f"?token={token}", data=body, content_type="application/json")
    collect = Collect(flask_send(client))
    collect.upload(webhook(form_uid) + f"?token={token}", INSTANCE)
    assert collect.exchanges[-1][:2] == ("POST", 201)
    with pytest.raises(UploadFailed):  # the rule the client applies to anything else
        Collect(flask_send(client)).upload(webhook("aNoSuchForm") + "?token=x", INSTANCE)
