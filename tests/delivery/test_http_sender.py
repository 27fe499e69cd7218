"""webapp.delivery.sender and .addresses: the outbound HTTP wrapper, against loopback servers.

Every connection a test opens goes to loopback (an autouse guard asserts it);
internal non-loopback addresses are only judged, never contacted.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.delivery.addresses import address_refusal, parse_networks, validate_endpoint_url
from webapp.delivery.sender import EXCERPT_BYTES, DeliveryError, HTTPResult, Sender, SSRFError

LOOPBACK = ["127.0.0.0/8"]
JSON = {"Content-Type": "application/json"}

# --------------------------------------------------------------------------
# Loopback-only guard and test servers
# --------------------------------------------------------------------------

_real_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Fail any test that would open a connection to a non-loopback address."""

    def connect(sock, address):
        if isinstance(address, tuple):
            ip = ipaddress.ip_address(address[0].split("%")[0])
            assert ip.is_loopback, f"test tried to connect to {ip}"
        return _real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@dataclass
class Seen:
    path: str
    headers: Message  # case-insensitive, as received
    raw_headers: list[tuple[str, str]]
    body: bytes
    client_port: int


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, 0), Handler)
        self.tls = tls
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        self.sent_bytes = 0
        self.port = self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.base = f"{'https' if tls else 'http'}://{shown}:{self.port}"
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def get_request(self):
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake happens on first read, in the handler's thread.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address):
        pass  # clients hanging up on purpose are part of these tests

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(
            Seen(self.path, self.headers, self.headers.items(), body, self.client_address[1])
        )
        path = urlsplit(self.path).path
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        getattr(self, "route_" + path.strip("/").replace("-", "_"), self.route_ok)(query)

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "text/plain"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self, query):
        self.reply(200, b"thanks")

    def route_fail(self, query):
        self.reply(500, b"boom")

    def route_close(self, query):
        self.reply(200, b"bye", {"Connection": "close"})
        self.close_connection = True

    def route_latin1(self, query):
        self.reply(
            200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=ISO-8859-1"}
        )

    def route_badutf8(self, query):
        self.reply(200, b"ok \xff\xfe done", {"Content-Type": "text/plain"})

    def route_gzip(self, query):
        self.reply(200, gzip.compress(b"zipped answer"), {"Content-Encoding": "gzip"})

    def route_long_utf8(self, query):
        self.reply(200, "é".encode() * 3000, {"Content-Type": "text/plain; charset=utf-8"})

    def route_redirect(self, query):
        self.reply(int(query["code"]), b"", {"Location": query["to"]})

    def route_loop(self, query):
        self.reply(307, b"", {"Location": "/loop"})

    def route_stall(self, query):
        self.server.stop.wait(5)

    def route_trickle_headers(self, query):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(25):
            if self.server.stop.wait(0.2):
                return
            self.wfile.write(b"a")

    def route_trickle_body(self, query):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(25):
            if self.server.stop.wait(0.2):
                return
            self.wfile.write(b"b")

    def route_huge(self, query):
        size = 50 * 1024 * 1024
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"x" * 65536
        while self.server.sent_bytes < size and not self.server.stop.is_set():
            self.wfile.write(chunk)  # raises once the client hangs up
            self.server.sent_bytes += len(chunk)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def server2():
    """A second server on 127.0.0.2 (Linux answers on all of 127.0.0.0/8)."""
    srv = Server("127.0.0.2")
    yield srv
    srv.close()


@pytest.fixture
def sender():
    with Sender(timeout=5, allowed_networks=LOOPBACK, user_agent="Formhooks/test") as s:
        yield s


@pytest.fixture
def strict_sender():
    """No allowed networks: loopback is refused."""
    with Sender(timeout=5) as s:
        yield s


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------


def test_2xx_is_an_ok_result(server, sender):
    result = sender.post(server.base + "/ok", b"{}", headers=JSON)
    assert isinstance(result, HTTPResult)
    assert (result.status_code, result.ok, result.excerpt) == (200, True, "thanks")
    assert 0 < result.duration < 5
    assert result.location is None


def test_non_2xx_is_a_result_not_an_error(server, sender):
    result = sender.post(server.base + "/fail", b"{}", headers=JSON)
    assert (result.status_code, result.ok, result.excerpt) == (500, False, "boom")


def test_server_receives_body_headers_auth_and_user_agent_exactly(server, sender):
    body = json.dumps({"name": "Zoë", "note": "✓ naïve"}, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Formhooks-Delivery": "log-7f3a",
        "X-Api-Key": "k3y with spaces",
    }
    sender.post(server.base + "/ok", body, headers=headers, auth=("alice", "pä:ss"))
    [seen] = server.seen
    assert seen.body == body
    for name, value in headers.items():
        assert seen.headers[name] == value
    assert seen.headers["User-Agent"] == "Formhooks/test"
    expected = base64.b64encode("alice:pä:ss".encode()).decode()
    assert seen.headers["Authorization"] == f"Basic {expected}"
    assert seen.headers["Content-Length"] == str(len(body))
    assert "Cookie" not in seen.headers
    assert [n for n, _ in seen.raw_headers].count("User-Agent") == 1


def test_custom_user_agent_header_wins_and_non_ascii_value_goes_as_utf8(server, sender):
    sender.post(server.base + "/ok", b"", headers={"user-agent": "Mine/1", "X-Name": "Zoë"})
    [seen] = server.seen
    assert seen.headers["User-Agent"] == "Mine/1"
    # http.server decodes header bytes as Latin-1.
    assert seen.headers["X-Name"].encode("latin-1").decode("utf-8") == "Zoë"


def test_framing_headers_from_the_hook_are_ignored(server, sender):
    headers = {"Content-Length": "1", "Transfer-Encoding": "chunked", "Connection": "close"}
    assert sender.post(server.base + "/ok", b"abcdef", headers=headers).ok
    [seen] = server.seen
    assert (seen.body, seen.headers["Content-Length"]) == (b"abcdef", "6")
    assert "Transfer-Encoding" not in seen.headers


@pytest.mark.parametrize(
    ("headers", "secret"),
    [({"X-Token": "s3cret\r\nInjected: 1"}, "s3cret"), ({"Bad Name": "v"}, None)],
)
def test_bad_header_is_permanent_and_never_echoes_the_value(server, sender, headers, secret):
    with pytest.raises(DeliveryError) as info:
        sender.post(server.base + "/ok", b"", headers=headers)
    assert info.value.permanent
    assert secret is None or secret not in str(info.value)
    assert server.seen == []


@pytest.mark.parametrize(
    ("path", "excerpt"),
    [
        ("/latin1", "café"),
        ("/badutf8", "ok \ufffd\ufffd done"),
        ("/gzip", "zipped answer"),
    ],
)
def test_excerpt_is_decoded_leniently(server, sender, path, excerpt):
    assert sender.post(server.base + path, b"", headers={}).excerpt == excerpt


def test_excerpt_cut_inside_a_character_drops_the_partial_character(server, sender):
    excerpt = sender.post(server.base + "/long-utf8", b"", headers={}).excerpt
    assert excerpt == "é" * (EXCERPT_BYTES // 2)


def test_connections_are_kept_alive_and_reused(server, sender):
    for _ in range(3):
        assert sender.post(server.base + "/ok", b"{}", headers=JSON).ok
    assert len({seen.client_port for seen in server.seen}) == 1


def test_sender_is_usable_from_several_threads(server, sender):
    results: list[int] = []

    def work():
        for _ in range(5):
            results.append(sender.post(server.base + "/ok", b"{}", headers=JSON).status_code)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 20


def test_huge_body_is_capped_fast_and_its_connection_is_not_reused(server, sender):
    started = time.monotonic()
    result = sender.post(server.base + "/huge", b"", headers={})
    assert time.monotonic() - started < 1.5
    assert result.excerpt == "x" * EXCERPT_BYTES
    assert sender.post(server.base + "/ok", b"", headers={}).ok
    assert server.seen[0].client_port != server.seen[1].client_port
    assert server.sent_bytes < 50 * 1024 * 1024


# --------------------------------------------------------------------------
# No answer
# --------------------------------------------------------------------------


def test_connection_refused_is_a_temporary_error(sender):
    port = closed_port()
    with pytest.raises(DeliveryError) as info:
        sender.post(f"http://127.0.0.1:{port}/hook", b"{}", headers=JSON)
    assert str(info.value) == f"Connection refused by 127.0.0.1:{port}."
    assert not info.value.permanent
    assert not isinstance(info.value, SSRFError)


def test_dns_failure_is_a_temporary_error(sender, monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(DeliveryError) as info:
        sender.post("https://nowhere.example/hook", b"{}", headers=JSON)
    assert str(info.value) == "Could not resolve host nowhere.example: Name or service not known."
    assert not info.value.permanent


def test_slow_dns_is_bounded_by_the_timeout(monkeypatch):
    release = threading.Event()

    def slow_getaddrinfo(*args, **kwargs):
        release.wait(5)  # a resolver that does not answer
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    started = time.monotonic()
    try:
        with Sender(timeout=1) as sender, pytest.raises(DeliveryError) as info:
            sender.post("http://slow.example/hook", b"", headers={})
    finally:
        release.set()
    assert str(info.value) == "Timed out after 1 s waiting for slow.example:80 to answer."
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("path", ["/stall", "/trickle-headers", "/trickle-body"])
def test_timeout_bounds_the_whole_exchange(server, path):
    with Sender(timeout=1, allowed_networks=LOOPBACK) as sender:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as info:
            sender.post(server.base + path, b"{}", headers=JSON)
        elapsed = time.monotonic() - started
    assert str(info.value).startswith("Timed out after 1 s")
    assert f"127.0.0.1:{server.port}" in str(info.value)
    assert not info.value.permanent
    assert 0.9 < elapsed < 2.5
    assert 0.9 < info.value.duration < 2.5


def test_one_watchdog_thread_serves_every_post_and_forgets_finished_ones(
    server, sender, monkeypatch
):
    """A timer thread per post cost more than a fast send: one thread watches them all."""
    from webapp.delivery import deadline

    sender.post(server.base + "/ok", b"{}", headers=JSON)
    # Count the threads started during the posts (threads of earlier tests may
    # end meanwhile, so the number alive proves nothing).
    started: list[str] = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(50):
        assert sender.post(server.base + "/ok", b"{}", headers=JSON).ok
    monkeypatch.undo()
    assert started == []
    watchdogs = [t for t in threading.enumerate() if t.name == "formhooks-watchdog"]
    assert len(watchdogs) == 1
    assert not deadline.WATCHDOG._live  # finished exchanges hold nothing


def test_timeouts_of_different_lengths_fire_each_at_its_own_deadline(server):
    """Two senders with other timeouts: the shorter fires first, the longer is not cut early."""
    results: dict[float, float] = {}

    def post(timeout: float) -> None:
        with Sender(timeout=timeout, allowed_networks=LOOPBACK) as sender:
            started = time.monotonic()
            with pytest.raises(DeliveryError, match=f"Timed out after {timeout:g} s"):
                sender.post(server.base + "/stall", b"{}", headers=JSON)
            results[timeout] = time.monotonic() - started

    threads = [threading.Thread(target=post, args=(t,)) for t in (2.0, 0.5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.4 < results[0.5] < 1.5
    assert 1.9 < results[2.0] < 3.5


def test_timeout_on_a_reused_connection_and_that_connection_is_dropped(server):
    with Sender(timeout=1, allowed_networks=LOOPBACK) as sender:
        assert sender.post(server.base + "/ok", b"", headers={}).ok
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="Timed out after 1 s"):
            sender.post(server.base + "/trickle-body", b"", headers={})
        assert time.monotonic() - started < 2.5
        assert sender.post(server.base + "/ok", b"", headers={}).ok
    ports = [seen.client_port for seen in server.seen]
    assert ports[0] == ports[1] != ports[2]


def test_environment_proxies_and_netrc_are_ignored(server, sender, monkeypatch, tmp_path):
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login mallory password leaked\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert sender.post(server.base + "/ok", b"", headers={}).ok
    assert "Authorization" not in server.seen[0].headers


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://127.0.0.1/", "http://user:pw@127.0.0.1/", "http:///x"],
)
def test_unusable_url_is_a_permanent_error(sender, url):
    with pytest.raises(DeliveryError) as info:
        sender.post(url, b"", headers={})
    assert info.value.permanent


# --------------------------------------------------------------------------
# SSRF guard
# --------------------------------------------------------------------------


def test_loopback_ip_is_refused_without_connecting(server, strict_sender):
    with pytest.raises(SSRFError) as info:
        strict_sender.post(server.base + "/ok", b"{}", headers=JSON)
    assert str(info.value) == (
        "Refused: 127.0.0.1 is a loopback address; Formhooks does not send to internal "
        "addresses (see SSRF_ALLOWED_NETWORKS)."
    )
    assert info.value.permanent
    assert server.seen == []


def test_name_resolving_to_loopback_is_refused(server, strict_sender):
    with pytest.raises(SSRFError) as info:
        strict_sender.post(f"http://localhost:{server.port}/ok", b"{}", headers=JSON)
    message = str(info.value)
    assert message.startswith("Refused: localhost resolves to ")
    assert "a loopback address" in message
    assert server.seen == []


@pytest.fixture
def server6():
    try:
        srv = Server("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    yield srv
    srv.close()


def test_ipv6_loopback_is_refused_unless_allowed(server6, strict_sender):
    with pytest.raises(SSRFError, match=r"Refused: ::1 is a loopback address"):
        strict_sender.post(server6.base + "/ok", b"", headers={})
    assert server6.seen == []
    with Sender(timeout=5, allowed_networks="::1/128") as sender:
        assert sender.post(server6.base + "/ok", b"", headers={}).ok


def test_allowed_networks_let_loopback_through(server, sender):
    assert sender.post(server.base + "/ok", b"", headers={}).ok
    assert sender.post(f"http://localhost:{server.port}/ok", b"", headers={}).ok
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/hook", "a private address"),
        ("http://192.168.1.20:8080/", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://100.64.0.1/", "a shared (CGNAT, 100.64.0.0/10) address"),
        ("http://0.0.0.0:8000/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address (127.0.0.1) in IPv4-mapped form"),
        ("http://[::ffff:10.0.0.1]/", "a private address (10.0.0.1) in IPv4-mapped form"),
        ("http://[fd00::1]/", "a private (unique local) address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://2130706433/", "a loopback address"),
        ("http://0x7f.1/", "a loopback address"),
    ],
)
def test_internal_addresses_fail_before_any_connection(strict_sender, url, reason):
    with pytest.raises(SSRFError) as info:
        strict_sender.post(url, b"{}", headers=JSON)
    assert reason in str(info.value)
    assert info.value.reason == reason


def test_redirect_to_a_refused_address_ends_in_ssrf_error(server, server2):
    target = f"{server2.base}/ok"
    url = f"{server.base}/redirect?code=307&to={target}"
    with (
        Sender(timeout=5, allowed_networks=["127.0.0.1/32"]) as sender,
        pytest.raises(SSRFError) as info,
    ):
        sender.post(url, b"{}", headers=JSON)
    assert str(info.value).startswith(
        f"Refused the redirect to {target}: 127.0.0.2 is a loopback address;"
    )
    assert len(server.seen) == 1
    assert server2.seen == []


@pytest.mark.parametrize("code", [307, 308])
def test_307_and_308_are_followed_with_the_same_post(server, server2, sender, code):
    url = f"{server.base}/redirect?code={code}&to={server2.base}/ok"
    body = "données".encode()
    result = sender.post(url, body, headers={"X-Key": "v"}, auth=("u", "p"))
    assert (result.status_code, result.excerpt) == (200, "thanks")
    [seen] = server2.seen
    assert seen.body == body
    assert seen.headers["X-Key"] == "v"
    # Another origin: the basic auth credentials stay behind.
    assert "Authorization" not in seen.headers
    assert "Authorization" in server.seen[0].headers


def test_same_origin_redirect_keeps_basic_auth(server, sender):
    url = f"{server.base}/redirect?code=308&to=/ok"
    assert sender.post(url, b"x", headers={}, auth=("u", "p")).ok
    assert server.seen[1].path == "/ok"
    assert server.seen[1].headers["Authorization"] == server.seen[0].headers["Authorization"]


@pytest.mark.parametrize("code", [301, 302, 303])
def test_301_302_303_are_returned_not_followed(server, server2, sender, code):
    url = f"{server.base}/redirect?code={code}&to=/elsewhere"
    result = sender.post(url, b"{}", headers=JSON)
    assert (result.status_code, result.ok) == (code, False)
    assert result.location == f"{server.base}/elsewhere"
    assert len(server.seen) == 1


def test_too_many_redirects(server):
    with (
        Sender(timeout=5, allowed_networks=LOOPBACK, max_redirects=2) as sender,
        pytest.raises(DeliveryError, match=r"Too many redirects \(more than 2\)") as info,
    ):
        sender.post(server.base + "/loop", b"", headers={})
    assert not info.value.permanent
    assert len(server.seen) == 3


def test_one_lookup_per_new_connection_and_rebinding_is_refused(server, monkeypatch):
    """The address checked is the address connected to: no second lookup."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        # First answer: the allowed server. Later answers: an address that is
        # refused and has no server, so a second lookup could not go unseen.
        ip = "127.0.0.1" if len(lookups) == 1 else "127.0.0.3"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    url = f"http://rebind.test:{server.port}"
    with Sender(timeout=5, allowed_networks=["127.0.0.1/32"]) as sender:
        assert sender.post(url + "/ok", b"", headers={}).ok
        assert sender.post(url + "/close", b"", headers={}).ok
        assert lookups == ["rebind.test"]
        with pytest.raises(SSRFError) as info:
            sender.post(url + "/ok", b"", headers={})
    assert lookups == ["rebind.test", "rebind.test"]
    assert str(info.value).startswith(
        "Refused: rebind.test resolves to 127.0.0.3, a loopback address;"
    )
    assert [seen.path for seen in server.seen] == ["/ok", "/close"]
    assert server.seen[0].client_port == server.seen[1].client_port
    assert server.seen[0].headers["Host"] == f"rebind.test:{server.port}"


# --------------------------------------------------------------------------
# TLS: the connection goes to the checked address, TLS still uses the name
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA and a certificate for "localhost" only (no IP address in it)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def make(subject, issuer, key, signer, *, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make("Formhooks test CA", "Formhooks test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make("localhost", "Formhooks test CA", key, ca_key, ca=False, san="localhost")
    folder = tmp_path_factory.mktemp("tls")
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder


@pytest.fixture
def tls_server(certificates):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "leaf.pem", certificates / "key.pem")
    names: list[str | None] = []
    context.sni_callback = lambda sslobj, name, ctx: names.append(name)
    srv = Server(tls=context)
    srv.sni = names
    yield srv
    srv.close()


def test_tls_uses_the_host_name_for_sni_and_verification(tls_server, certificates):
    ca = str(certificates / "ca.pem")
    with Sender(timeout=5, allowed_networks=LOOPBACK, ca_bundle=ca) as sender:
        result = sender.post(f"https://localhost:{tls_server.port}/ok", b"{}", headers=JSON)
    assert (result.status_code, result.excerpt) == (200, "thanks")
    assert tls_server.sni == ["localhost"]


def test_tls_certificate_not_matching_the_host_is_refused(tls_server, certificates):
    ca = str(certificates / "ca.pem")
    with (
        Sender(timeout=5, allowed_networks=LOOPBACK, ca_bundle=ca) as sender,
        pytest.raises(DeliveryError) as info,
    ):
        sender.post(f"https://127.0.0.1:{tls_server.port}/ok", b"{}", headers=JSON)
    assert str(info.value).startswith("TLS error: certificate verify failed (")
    assert not info.value.permanent
    assert tls_server.seen == []


def test_tls_untrusted_certificate_is_a_tls_error(tls_server, sender):
    with pytest.raises(DeliveryError) as info:
        sender.post(f"https://localhost:{tls_server.port}/ok", b"{}", headers=JSON)
    assert str(info.value).startswith("TLS error: certificate verify failed (")
    assert f"localhost:{tls_server.port}" in str(info.value)
    assert tls_server.seen == []


# --------------------------------------------------------------------------
# address_refusal, parse_networks, validate_endpoint_url
# --------------------------------------------------------------------------


def teredo(server: str, client: str) -> ipaddress.IPv6Address:
    obfuscated = ~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF
    return ipaddress.IPv6Address(
        (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | obfuscated
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.0.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT, 100.64.0.0/10) address"),
        ("100.127.255.254", "a shared (CGNAT, 100.64.0.0/10) address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "a reserved ('this network') address"),
        ("224.0.0.251", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a broadcast address"),
        ("192.0.2.10", "a reserved (documentation) address"),
        ("198.18.0.1", "a reserved (benchmarking) address"),
        ("::", "an unspecified address"),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%2", "a link-local address"),
        ("fc00::1", "a private (unique local) address"),
        ("fd12:3456::1", "a private (unique local) address"),
        ("fec0::1", "a site-local address"),
        ("ff02::1", "a multicast address"),
        ("::127.0.0.1", "a reserved (IPv4-compatible) address"),
        ("2001:db8::1", "a reserved (documentation) address"),
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1) in IPv4-mapped form"),
        ("::ffff:169.254.169.254", "a link-local address (169.254.169.254) in IPv4-mapped form"),
        ("64:ff9b::a00:1", "a private address (10.0.0.1) in NAT64 form"),
        ("64:ff9b:1::1", "a private (local-use NAT64) address"),
        ("2002:7f00:1::", "a loopback address (127.0.0.1) in 6to4 form"),
        ("2002:c0a8:101::1", "a private address (192.168.1.1) in 6to4 form"),
        (str(teredo("65.54.227.120", "10.0.0.1")), "a private address (10.0.0.1) in Teredo form"),
    ],
)
def test_address_refusal_reasons(address, reason):
    assert address_refusal(ipaddress.ip_address(address), []) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        str(teredo("65.54.227.120", "8.8.4.4")),
    ],
)
def test_address_refusal_lets_public_addresses_through(address):
    assert address_refusal(ipaddress.ip_address(address), []) is None


def test_allowed_networks_win_whatever_the_address():
    allowed = parse_networks("10.0.0.0/8, 127.0.0.0/8 fd00::/8")
    for address in ("10.1.2.3", "127.0.0.1", "fd00::5", "::ffff:127.0.0.1", "2002:a00:1::"):
        assert address_refusal(ipaddress.ip_address(address), allowed) is None
    assert address_refusal(ipaddress.ip_address("192.168.0.1"), allowed) == "a private address"
    assert address_refusal(ipaddress.ip_address("::1"), allowed) == "a loopback address"


_internal_v4 = st.sampled_from(
    ["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "100.64.0.0/10"]
).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda i: ipaddress.ip_network(net)[i]
    )
)


@given(_internal_v4)
def test_every_ipv6_form_of_an_internal_ipv4_is_refused(v4):
    forms = [
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address((0x0064FF9B << 96) | int(v4)),
        ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80)),
        teredo("65.54.227.120", str(v4)),
    ]
    assert address_refusal(v4, []) is not None
    for form in forms:
        assert address_refusal(form, []) is not None, form
        assert address_refusal(form, [ipaddress.ip_network(f"{v4}/32")]) is None


@given(st.ip_addresses())
def test_an_address_is_allowed_when_its_network_is(ip):
    network = ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}")
    assert address_refusal(ip, [network]) is None


def test_parse_networks():
    assert parse_networks("") == []
    assert parse_networks("  127.0.0.0/8,10.0.0.0/8  ::1 ") == [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    assert parse_networks("10.1.2.3/8") == [ipaddress.ip_network("10.0.0.0/8")]
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        parse_networks("127.0.0.0/8, 10.0.0.0/33")
    with pytest.raises(ValueError, match="'intranet'"):
        parse_networks("intranet")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/hook",
        "http://example.org:8080/hook?x=1#frag",
        "HTTPS://Example.ORG/",
        "https://bücher.example/hook",
        "http://127.0.0.1:5000/hook",
        "http://[2001:db8::1]:8443/",
        "https://my_host.internal.example./x",
    ],
)
def test_validate_endpoint_url_accepts(url):
    assert validate_endpoint_url(url) == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "Enter the endpoint URL"),
        ("example.org/hook", "must start with http:// or https://"),
        ("file:///etc/passwd", "not file://"),
        ("gopher://example.org/", "not gopher://"),
        ("ftp://example.org/", "not ftp://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("https://user:pw@example.org/", "use the hook's basic auth fields"),
        ("https://user@example.org/", "use the hook's basic auth fields"),
        ("http:///hook", "needs a host name"),
        ("https://exa mple.org/", "spaces or control characters"),
        ("https://example.org/\r\nX: y", "spaces or control characters"),
        ("https://example.org/\x00", "spaces or control characters"),
        ("https://example.org:99999/", "between 1 and 65535"),
        ("https://example.org:0/", "between 1 and 65535"),
        ("https://example.org:http/", "between 1 and 65535"),
        ("https://example.org/" + "a" * 2000, "too long"),
        ("https://-bad-.example/", "not valid"),
        ("https://[not-ipv6]/", "not valid"),
    ],
)
def test_validate_endpoint_url_refuses(url, problem):
    problems = validate_endpoint_url(url)
    assert problems
    assert any(problem in p for p in problems), problems


def test_validate_endpoint_url_checks_ip_literals_only_when_given_networks():
    assert validate_endpoint_url("http://10.0.0.1/") == []
    assert validate_endpoint_url("http://example.org/", allowed_networks=[]) == []
    [problem] = validate_endpoint_url("http://10.0.0.1/", allowed_networks=[])
    assert problem.startswith("10.0.0.1 is a private address;")
    assert (
        validate_endpoint_url("http://10.0.0.1/", allowed_networks=parse_networks("10.0.0.0/8"))
        == []
    )


def test_delivery_error_fields():
    error = DeliveryError("Connection refused by a:1", duration=1.5)
    assert (str(error), error.message, error.permanent, error.duration) == (
        "Connection refused by a:1",
        "Connection refused by a:1",
        False,
        1.5,
    )
    assert SSRFError("Refused").permanent
    assert HTTPResult(204, "", 0.1).ok and not HTTPResult(302, "", 0.1).ok
