"""Outbound HTTP for hook deliveries: one bounded, SSRF-guarded POST per attempt.

This is the app's only outbound HTTP wrapper, and the one seam tests replace.
It has no Flask or database imports: callers pass everything in.

Redirects: 307/308 are followed (POST and body kept), at most ``max_redirects`` hops,
every new connection re-checked by the SSRF guard. 301/302/303 are not: clients turn
them into a bodiless GET whose 200 would log a delivery that never arrived, so the 3xx
is returned (not ok) with its ``location`` for the user to fix the URL.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import functools
import http.client
import ipaddress
import itertools
import os
import re
import socket
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import idna
import urllib3
import urllib3.exceptions
import urllib3.util.ssl_
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import parse_url

from webapp.validation import Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The most response body kept (and read) per attempt.
EXCERPT_BYTES = 2048
#: The longest endpoint URL accepted.
MAX_URL_LENGTH = 2000

_READ_CHUNK = 1024
_SSRF_HINT = "Formhooks does not send to internal addresses (see SSRF_ALLOWED_NETWORKS)."


# --------------------------------------------------------------------------
# Results and errors
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class HTTPResult:
    """An HTTP answer, whatever its status; the caller decides what counts.

    ``excerpt`` is the start of the body, at most EXCERPT_BYTES bytes, decoded
    with the charset of Content-Type (else UTF-8), undecodable bytes replaced.
    ``duration`` is the whole exchange in seconds (monotonic), redirects included.
    ``location`` is the absolute Location of a 3xx that was not followed.
    """

    status_code: int
    excerpt: str
    duration: float
    location: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status_code < 300


class DeliveryError(Exception):
    """An attempt that got no HTTP answer.

    ``message`` is clear and user-facing (it names no secret). ``permanent`` is
    True when retrying cannot help (SSRF refusal, bad URL or header).
    ``duration`` is the time spent on the attempt, in seconds.
    """

    def __init__(self, message: str, *, permanent: bool = False, duration: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.duration = duration


class SSRFError(DeliveryError):
    """The endpoint (or a redirect) leads to an internal address. Always permanent.

    ``host``, ``address`` and ``reason`` say what was refused, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        duration: float = 0.0,
        host: str | None = None,
        address: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, permanent=True, duration=duration)
        self.host = host
        self.address = address
        self.reason = reason


# --------------------------------------------------------------------------
# Address policy
# --------------------------------------------------------------------------


def _rules(*pairs: tuple[str, str]) -> list[tuple[IPNetwork, str]]:
    return [(ipaddress.ip_network(net), reason) for net, reason in pairs]


# Explicit tables: ipaddress's is_private/is_global differ between Python patch
# releases (3.11.7 calls fec0::1 and ::127.0.0.1 global), so they are only a
# last safety net here.
_V4_RULES = _rules(
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a reserved ('this network') address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT, 100.64.0.0/10) address"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.0.0.0/24", "a reserved (IETF protocol) address"),
    ("192.0.2.0/24", "a reserved (documentation) address"),
    ("198.51.100.0/24", "a reserved (documentation) address"),
    ("203.0.113.0/24", "a reserved (documentation) address"),
    ("198.18.0.0/15", "a reserved (benchmarking) address"),
    ("192.88.99.0/24", "a reserved (6to4 relay) address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "a broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_V6_RULES = _rules(
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a reserved (IPv4-compatible) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("fc00::/7", "a private (unique local) address"),
    ("ff00::/8", "a multicast address"),
    ("64:ff9b:1::/48", "a private (local-use NAT64) address"),
    ("100::/64", "a reserved (discard-only) address"),
    ("2001:db8::/32", "a reserved (documentation) address"),
    ("3fff::/20", "a reserved (documentation) address"),
    ("2001::/23", "a reserved (IETF protocol) address"),
    ("5f00::/16", "a reserved (segment routing) address"),
    ("::/8", "a reserved address"),
)
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def parse_networks(text: str) -> list[IPNetwork]:
    """Parse comma- or space-separated CIDRs ("127.0.0.0/8, fd00::/8").

    A bare address means that one address; host bits are ignored
    (10.1.2.3/8 is 10.0.0.0/8). An empty text gives []. Raises ValueError
    naming the first bad entry.
    """
    networks: list[IPNetwork] = []
    for entry in re.split(r"[\s,]+", text.strip()):
        if entry:
            networks.append(_parse_network(entry))
    return networks


def _parse_network(entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"Invalid network {entry!r}: expected an address or a CIDR "
            "such as 127.0.0.0/8 or fd00::/8."
        ) from None


def _coerce_networks(allowed: str | Sequence[object]) -> tuple[IPNetwork, ...]:
    if isinstance(allowed, str):
        return tuple(parse_networks(allowed))
    networks = []
    for item in allowed:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
        else:
            networks.append(_parse_network(str(item)))
    return tuple(networks)


def _embedded_ipv4(
    ip: ipaddress.IPv6Address,
) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The IPv4 address(es) an IPv6 transition form carries, with its name."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _MAPPED:
        return "IPv4-mapped", [low32]
    if ip in _TRANSLATED:
        return "IPv4-translated", [low32]
    if ip in _NAT64:
        return "NAT64", [low32]
    if ip in _SIX_TO_FOUR:
        return "6to4", [ip.sixtofour]
    if ip in _TEREDO:
        server, client = ip.teredo
        return "Teredo", [client, server]
    return None


def address_refusal(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why Formhooks must not send to ``ip``, or None when it may.

    The reason is a phrase such as "a loopback address" or "a private address".
    An address inside one of the ``allowed`` networks is allowed whatever it is.
    Otherwise private, loopback, link-local, CGNAT, multicast, unspecified and
    reserved addresses are refused; IPv6 forms that carry an IPv4 address
    (IPv4-mapped, NAT64, 6to4, Teredo) are judged by that IPv4 address.
    """
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if ip.version == 6:
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, carried = embedded
            for v4 in carried:
                reason = address_refusal(v4, allowed)
                if reason is not None:
                    return f"{reason} ({v4}) in {form} form"
            return None
    for net, reason in _V6_RULES if ip.version == 6 else _V4_RULES:
        if ip in net:
            return reason
    return None if ip.is_global else "a reserved address"


# --------------------------------------------------------------------------
# URL checks (save time)
# --------------------------------------------------------------------------

_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def validate_endpoint_url(
    url: str, *, allowed_networks: Sequence[IPNetwork] | None = None
) -> list[str]:
    """endpoint_problems() in English: the sender's reasons to refuse a URL."""
    return [p.message() for p in endpoint_problems(url, allowed_networks=allowed_networks)]


def endpoint_problems(
    url: str, *, allowed_networks: Sequence[IPNetwork] | None = None
) -> list[Problem]:
    """Problems with an endpoint URL (field "endpoint"); [] when it is usable.

    Checks the form only: http or https, a valid host, no user:password@ (the
    hook's basic auth fields are for that), no spaces or control characters,
    at most MAX_URL_LENGTH characters, a port between 1 and 65535. It does not
    resolve names (that happens at send time). When ``allowed_networks`` is
    given, a host written as an IP address is also checked with address_refusal,
    in any spelling the resolver reads as one (2130706433, 0x7f000001, 127.1).
    """
    if not isinstance(url, str) or not url:
        return [_url_problem("url.required")]
    if len(url) > MAX_URL_LENGTH:
        return [_url_problem("url.too_long", most=MAX_URL_LENGTH)]
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return [_url_problem("url.whitespace")]
    try:
        parts = urlsplit(url)
    except ValueError:
        return [_url_problem("url.unparsable")]
    scheme = parts.scheme.lower()
    if not scheme or not url.lower().startswith(scheme + "://"):
        return [_url_problem("url.no_scheme")]
    if scheme not in ("http", "https"):
        return [_url_problem("url.scheme", scheme=scheme)]
    problems = []
    if "@" in parts.netloc:
        problems.append(_url_problem("url.userinfo"))
    host = parts.hostname
    if not host:
        problems.append(_url_problem("url.no_host"))
    else:
        problems.extend(_host_problems(host, parts.netloc, allowed_networks))
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        problems.append(_url_problem("url.port"))
    return problems


def _url_problem(code: str, **params: object) -> Problem:
    return Problem("endpoint", code, params)


def _host_problems(host: str, netloc: str, allowed: Sequence[IPNetwork] | None) -> list[Problem]:
    ip = _ip_literal(host)
    if ip is None and "[" in netloc:
        return [_url_problem("url.bad_ipv6", host=host)]
    if ip is None:
        name = host.rstrip(".")
        try:
            ascii_name = name if name.isascii() else idna.encode(name, uts46=True)
        except (idna.IDNAError, UnicodeError):
            return [_url_problem("url.bad_host", host=host)]
        if isinstance(ascii_name, bytes):
            ascii_name = ascii_name.decode("ascii")
        labels = ascii_name.split(".")
        if len(ascii_name) > 253 or not all(_LABEL.match(lb) for lb in labels):
            return [_url_problem("url.bad_host", host=host)]
        # A name the resolver reads as an address (2130706433, 0x7f.1, 127.1,
        # and after IDNA mapping ①②⑦.0.0.1) is judged by that address.
        address = None if allowed is None else _numeric_address(ascii_name.lower())
        reason = None if address is None else address_refusal(address, allowed)
        if reason is not None:
            return [
                _url_problem("url.internal_spelling", host=host, ip=str(address), reason=reason)
            ]
        if not host.isascii() and not _urllib3_accepts(host):
            return [_url_problem("url.bad_host", host=host)]
        return []
    reason = None if allowed is None else address_refusal(ip, allowed)
    if reason is not None:
        return [_url_problem("url.internal", ip=str(ip), reason=reason)]
    return []


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _numeric_address(name: str) -> IPAddress | None:
    """The address the resolver reads in ``name`` without any lookup, or None.

    getaddrinfo with AI_NUMERICHOST is the very parser the send-time guard's
    lookup uses (inet_aton forms: decimal, octal, hex, one to four parts), so
    save time and send time cannot read a host differently.
    """
    try:
        infos = socket.getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(infos[0][4][0]) if infos else None


def _urllib3_accepts(host: str) -> bool:
    """urllib3 IDNA-encodes names strictly (no UTS 46 mapping): ｅｘａｍｐｌｅ.org
    or ①②⑦.0.0.1 make every send fail, so they are refused at save."""
    try:
        parse_url(f"http://{host}/")
    except urllib3.exceptions.LocationParseError:
        return False
    return True


# --------------------------------------------------------------------------
# One exchange: deadline, watchdog, guarded connections
# --------------------------------------------------------------------------


class _Exchange:
    """The state of one Sender.post call: its deadline and the sockets it uses.

    The watchdog (one thread per process, _WATCHDOG) calls fire() at the deadline: every socket
    registered so far is shut down, which wakes any blocking connect, send or
    recv at once. Sockets are registered as duplicated descriptors owned by the
    exchange, so a shutdown can never hit a descriptor reused by someone else,
    and a TLS wrap of the original socket does not hide it.
    """

    def __init__(self, timeout: float, allowed: tuple[IPNetwork, ...]) -> None:
        self.timeout = timeout
        self.allowed = allowed
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.target = ""
        self.fired = False
        self._done = False
        self._watched: list[socket.socket] = []
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.deadline

    def timeout_error(self) -> DeliveryError:
        return DeliveryError(
            f"Timed out after {self.timeout:g} s waiting for {self.target} to answer.",
            duration=self.elapsed(),
        )

    def watch(self, sock: socket.socket) -> None:
        try:
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except (OSError, ValueError):
            return
        with self._lock:
            if self._done:
                dup.close()
                return
            self._watched.append(dup)
            if self.fired:
                _shutdown(dup)

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for dup in self._watched:
                _shutdown(dup)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            watched, self._watched = self._watched, []
        for dup in watched:
            dup.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)


_CURRENT: ContextVar[_Exchange | None] = ContextVar("formhooks_exchange", default=None)


@functools.lru_cache(maxsize=1024)
def _url_problems(url: str) -> tuple[str, ...]:
    """validate_endpoint_url for the sender: a hook's URL is checked once per process."""
    return tuple(validate_endpoint_url(url))


class _Watchdog:
    """One thread that fires every exchange still running at its deadline.

    A timer thread per post cost more than a fast send itself. Exchanges are
    kept in deadline order per timeout (all of a Sender's have the same), so
    the thread only ever looks at the head of each queue; a finished exchange
    is forgotten at once, and its queue entry is dropped when it comes up.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[float, deque[tuple[float, int]]] = {}
        self._live: dict[int, _Exchange] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, exchange: _Exchange) -> int:
        key = next(self._keys)
        with self._cond:
            if self._thread is None or self._pid != os.getpid():  # first use, or forked
                self._queues, self._live = {}, {}
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="formhooks-watchdog", daemon=True
                )
                self._thread.start()
            queue = self._queues.setdefault(exchange.timeout, deque())
            queue.append((exchange.deadline, key))
            self._live[key] = exchange
            if len(queue) == 1:
                self._cond.notify()
        return key

    def forget(self, key: int) -> None:
        with self._cond:
            self._live.pop(key, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                due: list[_Exchange] = []
                wake = None
                for queue in self._queues.values():
                    while queue:
                        deadline, key = queue[0]
                        if key not in self._live:
                            queue.popleft()
                        elif deadline <= now:
                            queue.popleft()
                            due.append(self._live.pop(key))
                        else:
                            wake = deadline if wake is None else min(wake, deadline)
                            break
                for exchange in due:
                    exchange.fire()
                self._cond.wait(None if wake is None else max(0.0, wake - time.monotonic()))


_WATCHDOG = _Watchdog()


def _resolve(host: str, port: int, exchange: _Exchange) -> list[tuple]:
    """getaddrinfo, bounded by the exchange deadline (one lookup per call)."""

    def lookup() -> list[tuple]:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    try:
        infos = lookup() if _ip_literal(host) is not None else _bounded(lookup, exchange)
    except (OSError, UnicodeError) as e:  # gaierror is an OSError
        reason = getattr(e, "strerror", None) or str(e)
        raise DeliveryError(f"Could not resolve host {host}: {reason}.") from None
    if not infos:
        raise DeliveryError(f"Could not resolve host {host}: no address found.")
    return infos


def _bounded(lookup, exchange: _Exchange) -> list[tuple]:
    # getaddrinfo cannot be interrupted; a helper thread lets the deadline win.
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["infos"] = lookup()
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e

    thread = threading.Thread(target=run, name="formhooks-dns", daemon=True)
    thread.start()
    thread.join(exchange.remaining())
    if thread.is_alive():
        raise exchange.timeout_error()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["infos"]  # type: ignore[return-value]


def _ssrf_message(host: str, address: str, reason: str) -> str:
    if _ip_literal(host) is not None:
        return f"Refused: {address} is {reason}; {_SSRF_HINT}"
    return f"Refused: {host} resolves to {address}, {reason}; {_SSRF_HINT}"


def _open_guarded_socket(conn: HTTPConnection) -> socket.socket:
    """Resolve once, check every address, connect to a checked one."""
    exchange = _CURRENT.get()
    if exchange is None:
        raise DeliveryError("Outbound connection outside Sender.post.", permanent=True)
    # _dns_host is what urllib3 itself resolves (conn.host drops a trailing dot).
    host, port = conn._dns_host.strip("[]"), conn.port
    if exchange.expired:
        raise exchange.timeout_error()
    infos = _resolve(host, port, exchange)
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        reason = address_refusal(address, exchange.allowed)
        if reason is not None:
            raise SSRFError(
                _ssrf_message(host, str(address), reason),
                host=host,
                address=str(address),
                reason=reason,
            )
    error: OSError | None = None
    for family, type_, proto, _, sockaddr in infos:
        try:
            return _connect(conn, exchange, family, type_, proto, sockaddr)
        except OSError as e:
            error = e
            if exchange.expired:
                raise exchange.timeout_error() from e
    raise _connect_error(host, port, error)


def _connect(conn, exchange, family, type_, proto, sockaddr) -> socket.socket:
    sock = socket.socket(family, type_, proto)
    try:
        exchange.watch(sock)
        for option in conn.socket_options or ():
            sock.setsockopt(*option)
        limit = exchange.remaining()
        if isinstance(conn.timeout, int | float):
            limit = min(limit, conn.timeout)
        sock.settimeout(max(limit, 0.001))
        if conn.source_address:
            sock.bind(conn.source_address)
        sock.connect(sockaddr)
        return sock
    except BaseException:
        sock.close()
        raise


def _connect_error(host: str, port: int, error: OSError | None) -> DeliveryError:
    where = f"{_bracket(host)}:{port}"
    if isinstance(error, ConnectionRefusedError):
        return DeliveryError(f"Connection refused by {where}.")
    if isinstance(error, TimeoutError):
        return DeliveryError(f"Timed out connecting to {where}.")
    reason = getattr(error, "strerror", None) or str(error)
    return DeliveryError(f"Could not connect to {where}: {reason}.")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _watch_pooled(conn: HTTPConnection) -> HTTPConnection:
    exchange = _CURRENT.get()
    if exchange is not None and conn is not None and conn.sock is not None:
        exchange.watch(conn.sock)
    return conn


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _open_guarded_socket(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    # Only the TCP socket changes: TLS SNI and certificate checks still use
    # self.host, the name from the URL.
    def _new_conn(self) -> socket.socket:
        return _open_guarded_socket(self)


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def _get_conn(self, timeout: float | None = None):
        return _watch_pooled(super()._get_conn(timeout))


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _get_conn(self, timeout: float | None = None):
        return _watch_pooled(super()._get_conn(timeout))


# --------------------------------------------------------------------------
# The sender
# --------------------------------------------------------------------------

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
# Framing and connection management belong to the HTTP client, not to hooks.
_IGNORED_HEADERS = frozenset(
    ["connection", "content-length", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]
)


class Sender:
    """POSTs deliveries over pooled keep-alive connections.

    One urllib3 PoolManager per Sender; share a Sender between threads freely
    (urllib3's pools are thread-safe, the per-call state lives in a context
    variable; no cookie is ever stored or sent). Do not share one across fork(): make
    it in the process that uses it. ``timeout`` (DELIVERY_TIMEOUT) bounds each
    whole post(), redirects included. ``allowed_networks`` is a list of
    networks or CIDR strings, or a text for parse_networks. ``ca_bundle`` is a
    PEM file of trusted CAs (default: certifi's). Proxy and .netrc settings
    from the environment are ignored.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        allowed_networks: str | Sequence[IPNetwork | str] = (),
        user_agent: str = "Formhooks",
        max_redirects: int = 5,
        pool_maxsize: int = 10,
        ca_bundle: str | None = None,
    ) -> None:
        if not timeout > 0 or max_redirects < 0:
            raise ValueError("timeout must be positive and max_redirects not negative")
        self.timeout = float(timeout)
        self.allowed_networks = _coerce_networks(allowed_networks)
        self.max_redirects = max_redirects
        self._default_headers = {
            "User-Agent": user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            "Connection": "keep-alive",
        }
        # urllib3 directly, not requests: no cookies, proxies or .netrc to
        # ignore, and a third less CPU per send (docs/performance.md).
        self._pools = urllib3.PoolManager(
            num_pools=max(10, pool_maxsize), maxsize=pool_maxsize, block=False
        )
        self._pools.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }
        context = urllib3.util.ssl_.create_urllib3_context()
        context.load_verify_locations(cafile=ca_bundle or certifi.where())
        self._tls = {"ssl_context": context, "cert_reqs": "CERT_REQUIRED"}

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._pools.clear()

    def post(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        auth: tuple[str, str] | None = None,
    ) -> HTTPResult:
        """POST ``body`` to ``url`` with ``headers``, the User-Agent and basic auth.

        Returns an HTTPResult for any HTTP status. Raises SSRFError when the
        host (or a redirect) resolves to an address that is not allowed, and
        DeliveryError for an attempt with no answer: bad URL or header
        (permanent), DNS failure, refused connection, TLS error, too many
        redirects, or no complete answer within ``timeout`` seconds.
        A header named in ``headers`` wins over the default User-Agent;
        ``auth`` wins over an Authorization header; framing headers
        (Content-Length, Transfer-Encoding, Connection...) are ignored.
        """
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError("body must be bytes")
        exchange = _Exchange(self.timeout, self.allowed_networks)
        token = _CURRENT.set(exchange)
        watched = _WATCHDOG.watch(exchange)
        try:
            problems = _url_problems(url)
            if problems:
                raise DeliveryError(" ".join(problems), permanent=True)
            merged = CaseInsensitiveDict(self._default_headers)
            merged.update(_headers(headers, auth))
            return self._follow(exchange, url, bytes(body), merged)
        except DeliveryError as e:
            e.duration = exchange.elapsed()
            raise
        finally:
            _WATCHDOG.forget(watched)
            _CURRENT.reset(token)
            exchange.finish()

    def _follow(
        self, exchange: _Exchange, url: str, body: bytes, headers: CaseInsensitiveDict
    ) -> HTTPResult:
        for hop in range(self.max_redirects + 1):
            response = self._send(exchange, url, body, headers, redirected=hop > 0)
            status = response.status
            location = _location(url, response.headers.get("Location"))
            if status not in (307, 308) or location is None:
                return _result(exchange, response, location if 300 <= status < 400 else None)
            response.close()
            response.release_conn()
            if hop == self.max_redirects:
                break
            problems = _url_problems(location)
            if problems:
                raise DeliveryError(f"Redirected to an unusable URL: {' '.join(problems)}")
            if not _same_origin(url, location):
                headers = CaseInsensitiveDict(
                    {k: v for k, v in headers.items() if k.title() not in _CREDENTIAL_HEADERS}
                )
            url = location
        raise DeliveryError(
            f"Too many redirects (more than {self.max_redirects}); "
            f"the last one pointed to {location}."
        )

    def _send(
        self,
        exchange: _Exchange,
        url: str,
        body: bytes,
        headers: CaseInsensitiveDict,
        *,
        redirected: bool,
    ) -> urllib3.BaseHTTPResponse:
        exchange.target = _target(url)
        if exchange.expired:
            raise exchange.timeout_error()
        limit = max(exchange.remaining(), 0.001)
        try:
            parts = parse_url(url)
            scheme = (parts.scheme or "").lower()
            if scheme not in ("http", "https") or not parts.host:
                raise DeliveryError(f"Invalid request: unusable URL {url!r}.", permanent=True)
            pool = self._pools.connection_from_host(
                parts.host,
                parts.port,
                scheme,
                pool_kwargs=self._tls if scheme == "https" else None,
            )
            return pool.urlopen(
                "POST",
                parts.request_uri,
                body=body,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                retries=False,
                timeout=urllib3.Timeout(connect=limit, read=limit),
                preload_content=False,
                decode_content=False,
            )
        except SSRFError as e:
            if redirected:
                e.message = f"Refused the redirect to {url}: {e.message.removeprefix('Refused: ')}"
                e.args = (e.message,)
            raise
        except DeliveryError:
            if exchange.expired:
                raise exchange.timeout_error() from None
            raise
        except urllib3.exceptions.LocationParseError as e:
            raise DeliveryError(f"Invalid request: {e}", permanent=True) from e
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as e:
            raise _translate(e, exchange) from e
        except (ValueError, UnicodeError) as e:
            # Not str(e): it may quote a header value, and those are secrets.
            raise DeliveryError(
                f"Could not build the request to {exchange.target} ({type(e).__name__}); "
                "check the URL and the custom headers.",
                permanent=True,
            ) from e


def _headers(headers: Mapping[str, str], auth: tuple[str, str] | None) -> CaseInsensitiveDict:
    """Checked request headers; values never appear in error messages.

    Framing headers (Content-Length, Transfer-Encoding, Connection...) are ignored.
    """
    result = CaseInsensitiveDict()
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise DeliveryError(f"Invalid header name {name!r}.", permanent=True)
        if name.lower() in _IGNORED_HEADERS:
            continue
        value = str(value).strip(" \t")
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            raise DeliveryError(
                f"The value of header {name!r} contains a line break or control character.",
                permanent=True,
            )
        # http.client sends str as Latin-1; UTF-8 is what users mean by non-ASCII.
        result[name] = value if value.isascii() else value.encode("utf-8")
    if auth is not None:
        user, password = auth
        if ":" in user:
            raise DeliveryError("The basic auth user name must not contain ':'.", permanent=True)
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        result["Authorization"] = f"Basic {token}"
    return result


def _result(
    exchange: _Exchange, response: urllib3.BaseHTTPResponse, location: str | None
) -> HTTPResult:
    """Read at most EXCERPT_BYTES + 1 bytes of the body, within the deadline.

    A body read to its end leaves the connection in the pool; a longer one,
    a broken one or a timed-out one closes the connection.
    """
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= EXCERPT_BYTES:
            if exchange.expired:
                raise exchange.timeout_error()
            want = min(_READ_CHUNK, EXCERPT_BYTES + 1 - total)
            chunk = response.read(want, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as e:
        if exchange.expired:
            raise exchange.timeout_error() from e
        # Otherwise the server did answer: keep the status and what came of the body.
    finally:
        response.close()
        response.release_conn()
    if exchange.fired:
        raise exchange.timeout_error()
    data = b"".join(chunks)
    return HTTPResult(
        status_code=response.status,
        excerpt=_excerpt(data, response.headers, truncated=total > EXCERPT_BYTES),
        duration=exchange.elapsed(),
        location=location,
    )


def _excerpt(data: bytes, headers: Mapping[str, str], *, truncated: bool) -> str:
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        data, truncated = _inflate(data, truncated)
    data = data[:EXCERPT_BYTES]
    charset = _charset(headers.get("Content-Type", ""))
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # A cut body may end inside a character: drop that tail, not replace it.
    return decoder.decode(data, final=not truncated)


def _inflate(data: bytes, truncated: bool) -> tuple[bytes, bool]:
    for wbits in (47, -15):  # gzip or zlib header, then raw deflate
        try:
            out = zlib.decompressobj(wbits).decompress(data, EXCERPT_BYTES + 1)
        except zlib.error:
            continue
        return out, truncated or len(out) > EXCERPT_BYTES
    return data, truncated


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip("\"'"):
            return value.strip().strip("\"'")
    return "utf-8"


def _location(url: str, location: str | None) -> str | None:
    """The absolute URL of a Location header (sent as UTF-8, read as Latin-1)."""
    if location is None:
        return None
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    return urljoin(url, location)


def _target(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{_bracket(parts.hostname or '')}:{port}"


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    if pa.hostname != pb.hostname:
        return False
    if _target(a) == _target(b) and pa.scheme.lower() == pb.scheme.lower():
        return True
    # http -> https on the default ports is an upgrade, not a new origin.
    return (pa.scheme.lower(), pa.port, pb.scheme.lower(), pb.port) == (
        "http",
        None,
        "https",
        None,
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (causes, contexts, reasons, args)."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        stack.extend(e for e in linked if isinstance(e, BaseException))


def _translate(error: Exception, exchange: _Exchange) -> DeliveryError:
    """A user-facing DeliveryError for what urllib3 or the socket raised."""
    if exchange.expired:
        return exchange.timeout_error()
    target = exchange.target
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = (cause.verify_message or cause.reason or "unknown reason").rstrip(".")
            return DeliveryError(f"TLS error: certificate verify failed ({detail}) for {target}.")
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            detail = cause.reason or cause.strerror or str(cause)
            return DeliveryError(f"TLS error: {detail} ({target}).")
    return _translate_transport(error, causes, exchange)


def _translate_transport(
    error: Exception, causes: list[BaseException], exchange: _Exchange
) -> DeliveryError:
    target = exchange.target
    if isinstance(error, urllib3.exceptions.SSLError):
        return DeliveryError(f"TLS error: {error} ({target}).")
    timeouts = (TimeoutError, urllib3.exceptions.TimeoutError)
    if any(isinstance(c, timeouts) for c in causes):
        return exchange.timeout_error()
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return DeliveryError(f"Connection refused by {target}.")
        if isinstance(cause, http.client.RemoteDisconnected):
            return DeliveryError(f"{target} closed the connection without answering.")
        if isinstance(cause, ConnectionResetError):
            return DeliveryError(f"Connection reset by {target}.")
        if isinstance(cause, http.client.HTTPException):
            return DeliveryError(f"Invalid HTTP answer from {target}: {cause!r}.")
    return DeliveryError(f"Could not send to {target}: {error}.")
