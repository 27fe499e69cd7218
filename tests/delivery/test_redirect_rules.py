"""Redirects and echoed secrets, through the real worker, against real loopback endpoints.

Two servers on different ports of 127.0.0.1 are two origins. What a hook
holds (custom header values, basic auth) reaches only the origin of its URL,
and never comes back in what Formhooks stores (log and attempt messages),
shows to viewers or mails (docs/security.md, "Redirects" and "Secrets in
answers").
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import select

from tests.helpers import LOOPBACK_HOOKS, LoopbackServer, fixture_bytes, run_worker
from webapp.delivery import queue as q
from webapp.extensions import db
from webapp.models import Attempt, DeliveryLog

PASSWORD = "pa55-w0rd-Zq"  # noqa: S105 - a test value
API_KEY = "k-9f3b2c71-secret"
TOKEN = base64.b64encode(f"crm:{PASSWORD}".encode()).decode()

Answer = Callable[[dict], tuple[int, dict[str, str], bytes]]


class Site:
    """A loopback HTTP server that records each POST and answers with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[dict] = []
        self.answer = answer
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"path": self.path, "headers": dict(self.headers), "body": body}
                site.requests.append(request)
                status, headers, reply = site.answer(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = LoopbackServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ok(request: dict) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/plain"}, b"thanks"


def echo(status: int) -> Answer:
    """An endpoint that answers with the request's headers, as many test services do."""

    def answer(request: dict) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"headers": request["headers"]}).encode()
        return status, {"Content-Type": "application/json"}, body

    return answer


def redirect(code: int, to: str) -> Answer:
    def answer(request: dict) -> tuple[int, dict[str, str], bytes]:
        return code, {"Location": to, "Content-Type": "text/plain"}, b"moved"

    return answer


pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


@pytest.fixture
def sites():
    made: list[Site] = []

    def make(answer: Answer) -> Site:
        made.append(Site(answer))
        return made[-1]

    yield make
    for site in made:
        site.close()


def deliver(app, client, make, url: str) -> DeliveryLog:
    """One submission to one hook with a custom header and basic auth; run the worker."""
    form_uid, token = make.form()
    make.hook(
        form_uid,
        endpoint=url,
        auth_level="basic_auth",
        username="crm",
        password=PASSWORD,
        custom_headers={"X-Api-Key": API_KEY},
    )
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=fixture_bytes("nested.json"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.json
    run_worker(app)
    with app.app_context():
        log = db.session.scalars(select(DeliveryLog)).one()
        _ = log.attempts
        db.session.expunge_all()
        return log


def scheduled_retries(app) -> list[str]:
    with app.app_context():
        return [job.id for job in q.scheduler().get_jobs() if job.id.startswith("fh-deliver-")]


@pytest.mark.parametrize("code", [307, 308])
def test_a_redirect_to_another_origin_leaves_the_hooks_headers_and_auth_behind(
    app, client, make, sites, code
):
    second = sites(ok)
    first = sites(redirect(code, f"{second.base}/moved"))
    log = deliver(app, client, make, f"{first.base}/hook")
    assert log.status == "success", log.message
    [asked] = first.requests
    assert asked["headers"]["X-Api-Key"] == API_KEY
    assert asked["headers"]["Authorization"] == f"Basic {TOKEN}"
    [followed] = second.requests
    assert followed["body"] == asked["body"]
    # Formhooks' own headers go on; nothing the hook holds does.
    assert followed["headers"]["Content-Type"] == "application/json"
    assert followed["headers"]["X-Formhooks-Delivery"] == log.uid
    assert "X-Api-Key" not in followed["headers"]
    assert "Authorization" not in followed["headers"]


def test_a_redirect_within_the_origin_keeps_the_hooks_headers_and_auth(app, client, make, sites):
    def answer(request: dict) -> tuple[int, dict[str, str], bytes]:
        if request["path"] == "/hook":
            return 308, {"Location": "/moved"}, b""
        return ok(request)

    site = sites(answer)
    log = deliver(app, client, make, f"{site.base}/hook")
    assert log.status == "success", log.message
    first, followed = site.requests
    assert followed["path"] == "/moved"
    assert followed["headers"]["X-Api-Key"] == API_KEY
    assert followed["headers"]["Authorization"] == f"Basic {TOKEN}"


@pytest.mark.parametrize("status", [200, 400])
def test_an_endpoint_echoing_the_request_gets_no_secret_stored(app, client, make, sites, status):
    site = sites(echo(status))
    log = deliver(app, client, make, f"{site.base}/hook")
    [attempt] = log.attempts
    [request] = site.requests
    assert request["headers"]["X-Api-Key"] == API_KEY  # it was sent, and echoed
    for stored in (log.message, attempt.message):
        assert "[redacted]" in stored
        for secret in (API_KEY, PASSWORD, TOKEN):
            assert secret not in stored
        assert "X-Formhooks-Delivery" in stored  # the rest of the answer is kept


@pytest.mark.parametrize("code", [301, 302, 303])
def test_a_redirect_not_followed_names_its_new_location(app, client, make, sites, code):
    site = sites(redirect(code, "/new-hook"))
    log = deliver(app, client, make, f"{site.base}/hook")
    assert log.status_code == code
    assert log.message.startswith(f"HTTP {code}: redirected to {site.base}/new-hook")
    assert len(site.requests) == 1


@pytest.mark.parametrize(
    "location",
    ["ftp://example.org/hook", "file:///etc/passwd", "http://crm:hunter22@{host}/moved"],
    ids=["ftp", "file", "user-info"],
)
def test_a_redirect_to_an_unusable_url_fails_at_once(app, client, make, sites, location):
    second = sites(ok)
    location = location.format(host=second.base.removeprefix("http://"))
    first = sites(redirect(307, location))
    log = deliver(app, client, make, f"{first.base}/hook")
    assert (log.status, log.tries, log.next_retry_at) == ("failed", 1, None)
    assert log.message.startswith("Redirected to an unusable URL")
    assert "hunter22" not in log.message
    assert scheduled_retries(app) == []
    assert len(first.requests) == 1
    assert second.requests == []
    with app.app_context():
        assert db.session.scalar(select(Attempt.outcome)) == "error"


# --------------------------------------------------------------------------
# The sender's part, without the database
# --------------------------------------------------------------------------


@pytest.fixture
def sender():
    from webapp.delivery.sender import Sender

    with Sender(timeout=5, allowed_networks=["127.0.0.0/8"]) as s:
        yield s


def test_hook_headers_win_over_formhooks_own_except_the_reserved_ones(sites, sender):
    site = sites(ok)
    sender.post(
        f"{site.base}/hook",
        b"{}",
        headers={"Content-Type": "application/json", "X-Formhooks-Delivery": "d-1"},
        hook_headers={
            "content-type": "application/vnd.crm+json",
            "User-Agent": "crm-agent",
            "X-Formhooks-Delivery": "forged",
            "Host": "evil.example",
            "Keep-Alive": "timeout=1",
        },
    )
    [seen] = site.requests
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert headers["content-type"] == "application/vnd.crm+json"  # one header, any case
    assert len([name for name in seen["headers"] if name.lower() == "content-type"]) == 1
    assert headers["user-agent"] == "crm-agent"
    assert headers["x-formhooks-delivery"] == "d-1"
    assert headers["host"] == site.base.removeprefix("http://")
    assert "keep-alive" not in headers


def test_secrets_are_redacted_from_a_location_and_from_error_messages(sites, sender):
    from webapp.delivery.sender import DeliveryError

    site = sites(redirect(301, f"/callback?key={API_KEY}"))
    result = sender.post(site.base, b"{}", headers={}, hook_headers={"X-Api-Key": API_KEY})
    assert result.location == f"{site.base}/callback?key=[redacted]"
    assert API_KEY not in result.message
    site.answer = redirect(307, f"ftp://example.org/{API_KEY}")
    with pytest.raises(DeliveryError) as info:
        sender.post(site.base, b"{}", headers={}, hook_headers={"X-Api-Key": API_KEY})
    assert info.value.permanent
    assert info.value.message.startswith("Redirected to an unusable URL (ftp://example.org/")
    assert API_KEY not in info.value.message and API_KEY not in str(info.value)


def test_redaction_covers_escaped_forms_and_a_secret_cut_at_the_end():
    from webapp.delivery.redaction import REDACTED, redact, secrets_of

    secrets = secrets_of({"X-Api-Key": 'k"é/ key'}, ("crm", PASSWORD))
    text = json.dumps({"key": 'k"é/ key', "auth": f"Basic {TOKEN}"}) + " ?k=k%22%C3%A9%2F+key"
    shown = redact(text, secrets)
    assert "key" in shown and "auth" in shown  # the answer stays readable
    for leaked in ('k\\"\\u00e9/ key', TOKEN, "k%22%C3%A9%2F+key"):
        assert leaked not in shown
    assert redact("... password was " + PASSWORD[:6], secrets).endswith("was " + REDACTED)
    # Values too short to be secrets are left alone, or nothing would be readable.
    assert secrets_of({"Accept": "*/*", "X-N": "1"}, None) == ()
