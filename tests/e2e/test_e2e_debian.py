"""The plain Debian server of docs/deploy.md, running: nginx with TLS in front of supervisord.

deploy/debian's files, rendered for a temporary directory and local ports
(scripts/debian_layout.py): Debian's nginx and supervisor, the Procfile's
processes through deploy/debian/run with an env file, a PostgreSQL database
of the test's own migrated by the `release` line, a real Redis and a real
HTTP endpoint.
"""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select

from scripts.debian_layout import DebianLayout, unavailable
from tests.admin.admin_support import PASSWORD, csrf_from
from tests.helpers import (
    SECRET_KEY,
    Factory,
    fixture_bytes,
    load_logs,
    pg_unavailable_reason,
    postgres_database,
    wait_until,
)
from webapp import create_app
from webapp.extensions import db
from webapp.models import LoginThrottle, Submission

pytestmark = pytest.mark.e2e

CLIENT_ADDRESS = "127.0.0.2"  # another loopback address than nginx's own connections to gunicorn


@pytest.fixture
def layout(tmp_path, stack_redis):
    reason = unavailable() or pg_unavailable_reason()
    if reason:
        pytest.skip(f"Debian layout test skipped: {reason}")
    with postgres_database("fh_debian") as url:
        settings = {
            "DATABASE_URL": url,
            "REDIS_URL": stack_redis.url,
            "SECRET_KEY": SECRET_KEY,
            "ENCRYPTION_KEY": "debian-layout-test-encryption-key",
            "FORMHOOKS_INSTANCE_PATH": str(tmp_path / "instance"),
            "SSRF_ALLOWED_NETWORKS": "127.0.0.0/8",
            "WEB_CONCURRENCY": "1",
            "WORKER_CONCURRENCY": "1",
            "SCHEDULER_INTERVAL": "0.2",
            "DELIVERY_TIMEOUT": "5",
            "BODY_READ_TIMEOUT": "1",
        }
        with DebianLayout(tmp_path, settings) as running:
            yield running
            print(running.logs())  # shown when the test fails


class FromAddress(HTTPAdapter):
    """Connections from a given local address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def https_session(layout: DebianLayout) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would take the place of `verify`
    session.verify = str(layout.cert)
    session.mount("https://", FromAddress(CLIENT_ADDRESS))
    return session


def raw_post(host: str, port: int, path: str, body: bytes, *, tls_cert=None, pause: float = 0):
    """POST `body` in two halves, `pause` seconds apart; returns the answer's status."""
    sock = socket.create_connection((host, port), timeout=15)
    if tls_cert is not None:
        context = ssl.create_default_context(cafile=str(tls_cert))
        sock = context.wrap_socket(sock, server_hostname="localhost")
    with sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        half = len(body) // 2
        sock.sendall(body[:half])
        time.sleep(pause)
        sock.sendall(body[half:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def submissions(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Submission))
        db.session.remove()
        return count


@pytest.fixture
def app(layout):
    """The app on the layout's database, to make rows and read them."""
    made = create_app(layout.settings)
    yield made
    with made.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_debian_server_with_nginx_and_supervisor(layout, app, endpoint):
    release = layout.run("release")  # the Procfile's release line: migrations
    assert release.returncode == 0, release.stderr
    assert "Running upgrade  -> 0001" in release.stderr
    make = Factory(app)
    make.user("alice@example.org", role="admin", password=PASSWORD)
    form_uid, token = make.form()
    make.hook(
        form_uid,
        endpoint=endpoint.url,
        auth_level="basic_auth",
        username="crm",
        password="pässword",
    )
    layout.start()
    layout.wait_ready()
    https = https_session(layout)
    path = f"/api/v1/forms/{form_uid}/submissions"

    # A submission over HTTPS through nginx, delivered by the worker.
    posted = https.post(
        layout.url(path),
        data=fixture_bytes("nested.json"),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    [received] = endpoint.wait_for(1, timeout=30)
    assert json.loads(received["body"]) == json.loads(fixture_bytes("nested.json"))
    assert received["headers"]["Authorization"].startswith("Basic ")  # decrypted by the worker
    wait_until(lambda: load_logs(app)[0].status == "success", what="success", logs=layout.logs)

    # Plain HTTP is redirected to HTTPS.
    plain = requests.get(layout.url("/login?next=/", "http"), allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"] == layout.url("/login?next=/")

    # The login page over HTTPS: HSTS, a Secure cookie, the client's own address.
    page = https.get(layout.url("/login"), timeout=10)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Secure" in page.headers["Set-Cookie"]
    login = {"email": "alice@example.org", "csrf_token": csrf_from(page.text)}
    referer = {"Referer": layout.url("/login")}  # Flask-WTF's check over HTTPS, as browsers send
    wrong = https.post(
        layout.url("/login"), data={**login, "password": "wrong"}, headers=referer, timeout=10
    )
    assert wrong.status_code == 400
    with app.app_context():
        throttled = {row.address for row in db.session.scalars(select(LoginThrottle))}
        db.session.remove()
    assert throttled == {CLIENT_ADDRESS}  # not nginx's 127.0.0.1: TRUSTED_PROXIES=1
    right = https.post(
        layout.url("/login"),
        data={**login, "password": PASSWORD},
        headers=referer,
        allow_redirects=False,
        timeout=10,
    )
    assert right.status_code == 302
    assert https.get(layout.url("/"), timeout=10).status_code == 200  # the session works
    web_log = (layout.directory / "log" / "formhooks-web.log").read_text()
    assert f"{CLIENT_ADDRESS} " in web_log  # gunicorn's access log too

    # A client that pauses longer than BODY_READ_TIMEOUT (1 s) mid-body: nginx
    # holds the request until it is whole, so gunicorn never waits for it...
    body = fixture_bytes("kobo_flat.json")
    stored = submissions(app)
    slow = raw_post(
        "127.0.0.1",
        layout.https_port,
        path + f"?token={token}",
        body,
        tls_cert=layout.cert,
        pause=2,
    )
    assert slow == 201
    assert submissions(app) == stored + 1
    # ... where the same client straight to gunicorn is cut off (408, nothing stored).
    direct = raw_post("127.0.0.1", layout.web_port, path + f"?token={token}", body, pause=2)
    assert direct == 408
    assert submissions(app) == stored + 1

    # A body over MAX_SUBMISSION_BYTES is refused by nginx from its length alone.
    with socket.create_connection(("127.0.0.1", layout.https_port), timeout=15) as raw:
        context = ssl.create_default_context(cafile=str(layout.cert))
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(
                f"POST {path}?token={token} HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Length: {10 * 1024 * 1024 + 1}\r\nConnection: close\r\n\r\n".encode()
            )
            assert sock.recv(65536).split(b" ", 2)[1] == b"413"
    assert submissions(app) == stored + 1

    # Stopping supervisord stops every process it started, and nginx quits.
    layout.stop()
    assert layout.leftovers() == []
    log = (layout.directory / "log" / "supervisord.log").read_text()
    for name in ("web", "worker", "scheduler"):
        assert f"stopped: formhooks-{name} (exit status 0)" in log
