"""The web process as deployed (the Procfile's `web` line) against hostile clients.

Raw sockets on loopback: bodies cut short, bodies that stall, many slow
clients at once, and what the access log keeps of an ingest token.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time

import pytest
import requests
from sqlalchemy import func
from sqlalchemy import select as sql_select

from webapp.extensions import db
from webapp.models import Submission

pytestmark = pytest.mark.e2e

URLENCODED = "application/x-www-form-urlencoded"


def start_web(stack) -> None:
    """Only the web process: these tests never deliver."""
    stack.start("web")
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(stack.base_url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("web did not start:\n" + stack.logs())
        time.sleep(0.1)


def submissions(app) -> int:
    with app.app_context():
        count = db.session.scalar(sql_select(func.count()).select_from(Submission))
        db.session.remove()
        return count


def head(form_uid: str, token: str, content_type: str, framing: str) -> bytes:
    return (
        f"POST /api/v1/forms/{form_uid}/submissions HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\n{framing}\r\n\r\n"
    ).encode()


def connect(stack) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.port), timeout=10)


def answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one response on `sock` (read until the server closes)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        if b"\r\n\r\n" in data:
            headers, _, body = data.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":", 1)[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                break
    status = int(data.split(b" ", 2)[1])
    body = data.partition(b"\r\n\r\n")[2]
    return status, json.loads(body) if body.startswith(b"{") else {"raw": body.decode()}


@pytest.mark.parametrize(
    "content_type,body", [(URLENCODED, b"name=Ali&age=4"), ("application/json", b'{"a": 1}')]
)
def test_a_body_shorter_than_its_content_length_is_refused(app, make, stack, content_type, body):
    form_uid, token = make.form()
    start_web(stack)
    with connect(stack) as sock:
        sock.sendall(head(form_uid, token, content_type, "Content-Length: 100") + body)
        sock.shutdown(socket.SHUT_WR)
        status, payload = answer(sock)
    assert status == 400, payload
    assert "incomplete" in payload["error"]
    assert submissions(app) == 0


def test_a_chunked_body_without_its_last_chunk_is_refused(app, make, stack):
    form_uid, token = make.form()
    start_web(stack)
    with connect(stack) as sock:
        sock.sendall(
            head(form_uid, token, URLENCODED, "Transfer-Encoding: chunked")
            + b"e\r\nname=Ali&age=4\r\n"
        )
        sock.shutdown(socket.SHUT_WR)
        status, payload = answer(sock)
    assert status == 400, payload
    assert "incomplete" in payload["error"]
    assert submissions(app) == 0


def test_a_stalled_body_is_cut_off_with_408(app, make, stack):
    stack.env["BODY_READ_TIMEOUT"] = "1"
    form_uid, token = make.form()
    start_web(stack)
    with connect(stack) as sock:
        began = time.monotonic()
        sock.sendall(head(form_uid, token, URLENCODED, "Content-Length: 100") + b"name=Ali")
        status, payload = answer(sock)  # the client keeps its side open and sends nothing
        waited = time.monotonic() - began
    assert status == 408, payload
    assert "1 s" in payload["error"]
    assert 0.9 <= waited < 5
    assert submissions(app) == 0
    # The stall cost nothing lasting: the next sender is served.
    response = requests.post(
        f"{stack.base_url}/api/v1/forms/{form_uid}/submissions",
        data=b"name=Ali&age=4",
        headers={"Content-Type": URLENCODED, "Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    assert submissions(app) == 1


SLOW_SOCKETS = 200


def open_slow_clients(stack, form_uid: str, token: str) -> list[socket.socket]:
    """Half send a request line and headers, half full headers and 10 of 100 body bytes."""
    opened = []
    for number in range(SLOW_SOCKETS):
        sock = connect(stack)
        if number % 2:
            sock.sendall(b"POST /api/v1/forms/" + form_uid.encode() + b"/submissions HTTP/1.1\r\n")
            sock.sendall(b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n")
        else:
            sock.sendall(head(form_uid, token, URLENCODED, "Content-Length: 100") + b"name=Ali&a")
        opened.append(sock)
    return opened


def still_open(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has neither answered nor closed."""
    readable, _, _ = select.select(sockets, [], [], 0)
    return len(sockets) - len(readable)


def test_slow_clients_do_not_block_the_web_process(app, make, stack):
    form_uid, token = make.form()
    start_web(stack)
    slow = open_slow_clients(stack, form_uid, token)
    try:
        time.sleep(0.2)  # every slow socket is accepted and waiting in the server
        bodies = slow[0::2]
        assert still_open(bodies) == len(bodies)
        began = time.monotonic()
        health = requests.get(stack.base_url + "/healthz", timeout=5)
        health_seconds = time.monotonic() - began
        began = time.monotonic()
        posted = requests.post(
            f"{stack.base_url}/api/v1/forms/{form_uid}/submissions",
            data=b'{"a": 1}',
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            timeout=5,
        )
        post_seconds = time.monotonic() - began
        assert health.status_code == 200
        assert posted.status_code == 201, posted.text
        assert health_seconds < 1, health_seconds
        assert post_seconds < 1, post_seconds
        assert still_open(bodies) == len(bodies)  # they were held all along, not dropped
    finally:
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.close()
    assert submissions(app) == 1


def test_the_access_log_masks_ingest_tokens(app, make, stack):
    form_uid, token = make.form()
    start_web(stack)
    response = requests.post(
        f"{stack.base_url}/api/v1/forms/{form_uid}/submissions?a=1&token={token}",
        data=b"name=Ali&age=4",
        headers={"Content-Type": URLENCODED},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    log = stack.log_dir / "web.log"
    deadline = time.monotonic() + 5
    while "token=***" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert f"/api/v1/forms/{form_uid}/submissions?a=1&token=*** HTTP/1.1" in text
    assert token not in text


def test_send_test_runs_under_gevent_without_holding_up_other_requests(app, make, stack, endpoint):
    """The panel's "Send test" posts from the web process itself; under the
    gevent worker the send must yield, so the process keeps answering."""
    import threading

    from tests.admin.admin_support import PASSWORD, csrf_from

    make.user("alice@example.org", role="editor", password=PASSWORD)
    form_uid, _token = make.form(owner_email="alice@example.org")
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    endpoint.gate = threading.Event()
    stack.env["WEB_CONCURRENCY"] = "1"  # one gevent process: nobody else could answer
    start_web(stack)
    browser = requests.Session()
    login = browser.get(stack.base_url + "/login", timeout=5)
    browser.post(
        stack.base_url + "/login",
        data={
            "email": "alice@example.org",
            "password": PASSWORD,
            "csrf_token": csrf_from(login.text),
        },
        timeout=5,
    )
    page = browser.get(f"{stack.base_url}/forms/{form_uid}/hooks/{hook_uid}", timeout=5)
    assert page.status_code == 200, page.text[:500]
    answer: dict[str, requests.Response] = {}

    def press_send_test() -> None:
        answer["page"] = browser.post(
            f"{stack.base_url}/forms/{form_uid}/hooks/{hook_uid}/test",
            data={"csrf_token": csrf_from(page.text)},
            timeout=30,
        )

    pressing = threading.Thread(target=press_send_test)
    pressing.start()
    try:
        assert len(endpoint.wait_for(1)) == 1  # the test send is held at the endpoint
        # Meanwhile the same web process answers others.
        assert requests.get(stack.base_url + "/healthz", timeout=5).status_code == 200
        assert browser.get(stack.base_url + "/", timeout=5).status_code == 200
        assert "page" not in answer
    finally:
        endpoint.gate.set()
        pressing.join(30)
    assert answer["page"].status_code == 200
    assert "The endpoint answered HTTP 200" in answer["page"].text
    assert endpoint.requests[0]["headers"]["X-Formhooks-Test"] == "true"
