"""OpenRosa against the real web process (gunicorn from the Procfile's `web` line)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
import requests
from requests.auth import HTTPDigestAuth
from sqlalchemy import func, select

from tests.helpers import ROOT, RedisServer, fixture_bytes, free_port
from tests.ingest.openrosa_clients import Collect, Part, multipart, requests_send
from tests.stack import Stack
from webapp.extensions import db
from webapp.models import Submission

pytestmark = pytest.mark.e2e

INSTANCE = fixture_bytes("odk_instance.xml")
PHOTO = ("1700000000000.jpg", b"\xff\xd8\xff\xe0" * 10_000, "image/jpeg")


@pytest.fixture
def web(app, app_env, tmp_path):
    """Only the web process (no worker or scheduler: nothing here is delivered)."""
    redis = RedisServer(tmp_path).start()
    env = {**os.environ, **app_env, "REDIS_URL": redis.url, "PORT": str(free_port())}
    env["PYTHONPATH"] = str(ROOT)
    stack = Stack(env, tmp_path).start_all("web")
    yield stack
    stack.stop_all()
    redis.stop()


def raw_post(base_url: str, path: str, headers: dict, body: bytes) -> bytes:
    """Send a whole POST on a socket, then read the answer, as OkHttp does."""
    split = urlsplit(base_url)
    with socket.create_connection((split.hostname, split.port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {split.netloc}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode())
        sock.sendall(body)  # a BrokenPipeError here is what clients saw before
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_collect_upload_through_gunicorn(app, make, web):
    form_uid, token = make.form()
    url = f"{web.base_url}/api/v1/forms/{form_uid}/submissions"
    session = requests.Session()

    # HEAD with the token in the URL: 204, the OpenRosa headers, and Date (OpenRosa
    # HTTP: required on every answer; gunicorn adds it, once).
    head = session.head(url + f"?token={token}&deviceID=collect%3Aabc", timeout=10)
    assert head.status_code == 204
    assert head.headers["X-OpenRosa-Version"] == "1.0"
    assert int(head.headers["X-OpenRosa-Accept-Content-Length"]) > 0
    assert len(head.raw.headers.getlist("Date")) == 1

    # Over 64 KB without credentials: the whole body is read, the 401 can be read.
    body, content_type = multipart(
        [Part("xml_submission_file", INSTANCE, "submission.xml", "text/xml")]
        # Another file name than Collect's photo below: a known name with other
        # bytes is refused (docs/attachments.md).
        + [Part("large.jpg", PHOTO[1] * 5, "large.jpg", PHOTO[2])]
    )
    assert len(body) > 64 * 1024
    answer = raw_post(
        web.base_url,
        urlsplit(url).path,
        {"X-OpenRosa-Version": "1.0", "Content-Type": content_type},
        body,
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"OpenRosaResponse" in answer

    # Collect's whole sequence over http: challenge, Digest, multipart with a photo.
    collect = Collect(requests_send(session), username="enumerator1", password=token)
    message = collect.upload(url, INSTANCE, [PHOTO])
    assert [status for _, status, _ in collect.exchanges] == [401, 204, 201]
    assert message.startswith("Submission received")

    # An independent Digest implementation (requests), with a chunked body
    # (Form Submission API: servers MUST take chunked transfer encoding).
    def chunks():
        yield body[:1000]
        yield body[1000:]

    digest = requests.Session()
    digest.auth = HTTPDigestAuth("someone", token)
    digest.headers["X-OpenRosa-Version"] = "1.0"
    assert digest.head(url, timeout=10).status_code == 204  # challenged, then 204
    response = digest.post(  # preemptive: a generator body cannot be sent twice
        url, data=chunks(), headers={"Content-Type": content_type}, timeout=10
    )
    assert response.status_code == 201, response.text
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 1
