"""The Sender: one bounded, SSRF-guarded POST per attempt, and get_sender().

This is the app's only outbound HTTP wrapper for deliveries, and the one seam
tests replace. It uses urllib3 directly (requests' own transport): no cookies,
proxies or .netrc to ignore, and a third less CPU per send
(docs/performance.md). The deadline is webapp.delivery.deadline's, the SSRF
guard webapp.delivery.pools', the header rules webapp.delivery.headers'.

Redirects: 307/308 are followed (POST and body kept), at most ``max_redirects``
hops, every new connection re-checked by the SSRF guard. When a hop changes
the origin, the hook's headers, its basic auth and any credential header stay
behind. A redirect to a URL that cannot be used (another scheme, user info)
fails at once, permanently. 301/302/303 are not followed: clients turn them
into a bodiless GET whose 200 would log a delivery that never arrived, so the
3xx is returned (not ok) with its ``location`` for the user to fix the URL.

The hook's secret values (custom header values, password, basic-auth header)
are redacted from everything returned: excerpt, location, error messages.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
import urllib3.exceptions
import urllib3.util.ssl_
from flask import current_app
from urllib3.util import parse_url

from webapp.delivery.addresses import IPNetwork, coerce_networks, validate_endpoint_url
from webapp.delivery.deadline import CURRENT, WATCHDOG, Exchange
from webapp.delivery.excerpts import read_result
from webapp.delivery.failures import translate
from webapp.delivery.headers import CREDENTIAL_HEADERS, FRAMING_NAMES, HeaderError, sendable
from webapp.delivery.headers import basic_auth as basic_auth_header
from webapp.delivery.pools import GuardedHTTPConnectionPool, GuardedHTTPSConnectionPool, bracket
from webapp.delivery.redaction import redact, secrets_of
from webapp.delivery.results import EXCERPT_BYTES, DeliveryError, HTTPResult, SSRFError

if TYPE_CHECKING:
    from webapp.delivery.request import OutboundRequest

__all__ = ["EXCERPT_BYTES", "DeliveryError", "HTTPResult", "SSRFError", "Sender", "get_sender"]

#: Concurrent sends per worker process (the drainer's threads, the pool's size).
SEND_THREADS = 32


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
        self.allowed_networks = coerce_networks(allowed_networks)
        self.max_redirects = max_redirects
        self._default_headers: dict[str, tuple[str, str]] = {}
        _layer(
            self._default_headers,
            {
                "User-Agent": user_agent,
                "Accept": "*/*",
                "Accept-Encoding": "identity",
                "Connection": "keep-alive",
            },
        )
        self._pools = urllib3.PoolManager(
            num_pools=max(10, pool_maxsize), maxsize=pool_maxsize, block=False
        )
        self._pools.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
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

    def send(self, request: OutboundRequest) -> HTTPResult:
        """post() an OutboundRequest (webapp.delivery.request), signed as of now."""
        return self.post(
            request.url,
            request.body,
            headers=request.wire_headers(),
            hook_headers=request.hook_headers,
            auth=request.auth,
        )

    def post(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        hook_headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> HTTPResult:
        """POST ``body`` to ``url`` with the headers, the User-Agent and basic auth.

        ``headers`` are the caller's own (Content-Type, X-Formhooks-Delivery);
        ``hook_headers`` and ``auth`` are the hook's: they win over ``headers``
        and the default User-Agent (``auth`` over an Authorization header),
        are never sent to another origin than ``url``'s, and their values are
        redacted from what is returned. Framing headers (Content-Length,
        Transfer-Encoding, Connection...) are ignored; so are the names a hook
        may not set (webapp.delivery.headers.RESERVED) in ``hook_headers``.

        Returns an HTTPResult for any HTTP status. Raises SSRFError when the
        host (or a redirect) resolves to an address that is not allowed, and
        DeliveryError for an attempt with no answer: bad URL or header, or a
        redirect to an unusable URL (permanent), DNS failure, refused
        connection, TLS error, too many redirects, or no complete answer
        within ``timeout`` seconds.
        """
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError("body must be bytes")
        hook_headers = hook_headers or {}
        secrets = secrets_of(hook_headers, auth)
        exchange = Exchange(self.timeout, self.allowed_networks)
        token = CURRENT.set(exchange)
        watched = WATCHDOG.watch(exchange)
        try:
            problems = _url_problems(url)
            if problems:
                raise DeliveryError(" ".join(problems), permanent=True)
            own, private = self._headers(headers, hook_headers, auth)
            result = self._follow(exchange, url, bytes(body), own, private)
            return HTTPResult(
                result.status_code,
                redact(result.excerpt, secrets),
                result.duration,
                None if result.location is None else redact(result.location, secrets),
            )
        except DeliveryError as e:
            e.duration = exchange.elapsed()
            e.message = redact(e.message, secrets)
            e.args = (e.message,)
            raise
        finally:
            WATCHDOG.forget(watched)
            CURRENT.reset(token)
            exchange.finish()

    def _headers(
        self,
        headers: Mapping[str, str],
        hook_headers: Mapping[str, str],
        auth: tuple[str, str] | None,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(headers for any origin, headers for the first origin only).

        Names are matched in any case; the last layer wins (defaults, then
        ``headers``, then the hook's, then its basic auth). Plain dicts with
        one entry per name, not a case-insensitive mapping: this runs for
        every send, and urllib3 reads any mapping.
        """
        try:
            own = dict(self._default_headers)
            _layer(own, sendable(headers, drop=FRAMING_NAMES))
            private = dict(own)
            _layer(private, sendable(hook_headers))
            if auth is not None:
                private["authorization"] = ("Authorization", basic_auth_header(*auth))
        except HeaderError as e:
            raise DeliveryError(str(e), permanent=True) from None
        for name in CREDENTIAL_HEADERS:
            own.pop(name, None)
        return dict(own.values()), dict(private.values())

    def _follow(
        self,
        exchange: Exchange,
        url: str,
        body: bytes,
        own: dict[str, str],
        private: dict[str, str],
    ) -> HTTPResult:
        headers = private
        for hop in range(self.max_redirects + 1):
            response = self._send(exchange, url, body, headers, redirected=hop > 0)
            status = response.status
            location = _location(url, response.headers.get("Location"))
            if status not in (307, 308) or location is None:
                return read_result(exchange, response, location if 300 <= status < 400 else None)
            response.close()
            response.release_conn()
            if hop == self.max_redirects:
                break
            problems = _url_problems(location)
            if problems:
                raise DeliveryError(
                    f"Redirected to an unusable URL ({_shown(location)}): {' '.join(problems)}",
                    permanent=True,
                )
            if not _same_origin(url, location):
                headers = own  # the hook's headers and credentials stay with their origin
            url = location
        raise DeliveryError(
            f"Too many redirects (more than {self.max_redirects}); "
            f"the last one pointed to {location}."
        )

    def _send(
        self,
        exchange: Exchange,
        url: str,
        body: bytes,
        headers: dict[str, str],
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
            raise translate(e, exchange) from e
        except (ValueError, UnicodeError) as e:
            # Not str(e): it may quote a header value, and those are secrets.
            raise DeliveryError(
                f"Could not build the request to {exchange.target} ({type(e).__name__}); "
                "check the URL and the custom headers.",
                permanent=True,
            ) from e


def _layer(merged: dict[str, tuple[str, str]], headers: Mapping[str, str]) -> None:
    """Put ``headers`` over ``merged`` (lower-case name -> (name, value))."""
    for name, value in headers.items():
        merged[name.lower()] = (name, value)


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
    return f"{bracket(parts.hostname or '')}:{port}"


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


def _shown(url: str) -> str:
    """A URL for a message: without user info, at most 200 characters."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if "@" in parts.netloc:
            url = parts._replace(netloc="…@" + parts.netloc.rpartition("@")[2]).geturl()
    return url if len(url) <= 200 else url[:199] + "…"


@functools.lru_cache(maxsize=1024)
def _url_problems(url: str) -> tuple[str, ...]:
    """validate_endpoint_url for the sender: a hook's URL is checked once per process."""
    return tuple(validate_endpoint_url(url))


def get_sender() -> Sender:
    """One Sender (connection pool, SSRF guard) per process and app; thread-safe."""
    sender = current_app.extensions.get("formhooks.sender")
    if sender is None:
        from webapp import __version__

        sender = Sender(
            timeout=current_app.config["DELIVERY_TIMEOUT"],
            allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"],
            user_agent=f"Formhooks/{__version__}",
            pool_maxsize=SEND_THREADS,
        )
        current_app.extensions["formhooks.sender"] = sender
    return sender
