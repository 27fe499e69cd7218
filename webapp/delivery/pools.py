"""urllib3 connection pools whose every new connection passes the SSRF guard.

A new connection resolves its host once (within the send's deadline), checks
every address with the address policy (webapp.delivery.addresses), and
connects only to a checked address, so a DNS answer that changes between
check and connect (DNS rebinding) cannot get through. Every socket, new or
reused from the pool, is registered with the current Exchange (its deadline).
Connections are only opened inside Sender.post.
"""

from __future__ import annotations

import ipaddress
import socket

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from webapp.delivery.addresses import SSRF_HINT, address_refusal, ip_literal
from webapp.delivery.deadline import CURRENT, Exchange, resolve
from webapp.delivery.results import DeliveryError, SSRFError


def _ssrf_message(host: str, address: str, reason: str) -> str:
    if ip_literal(host) is not None:
        return f"Refused: {address} is {reason}; {SSRF_HINT}"
    return f"Refused: {host} resolves to {address}, {reason}; {SSRF_HINT}"


def _open_guarded_socket(conn: HTTPConnection) -> socket.socket:
    """Resolve once, check every address, connect to a checked one."""
    exchange = CURRENT.get()
    if exchange is None:
        raise DeliveryError("Outbound connection outside Sender.post.", permanent=True)
    # _dns_host is what urllib3 itself resolves (conn.host drops a trailing dot).
    host, port = conn._dns_host.strip("[]"), conn.port
    if exchange.expired:
        raise exchange.timeout_error()
    infos = resolve(host, port, exchange)
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


def _connect(
    conn: HTTPConnection, exchange: Exchange, family, type_, proto, sockaddr
) -> socket.socket:
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
    where = f"{bracket(host)}:{port}"
    if isinstance(error, ConnectionRefusedError):
        return DeliveryError(f"Connection refused by {where}.")
    if isinstance(error, TimeoutError):
        return DeliveryError(f"Timed out connecting to {where}.")
    reason = getattr(error, "strerror", None) or str(error)
    return DeliveryError(f"Could not connect to {where}: {reason}.")


def bracket(host: str) -> str:
    """An IPv6 address in brackets, as in a URL; other hosts as they are."""
    return f"[{host}]" if ":" in host else host


def _watch_pooled(conn: HTTPConnection) -> HTTPConnection:
    exchange = CURRENT.get()
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


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def _get_conn(self, timeout: float | None = None):
        return _watch_pooled(super()._get_conn(timeout))


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _get_conn(self, timeout: float | None = None):
        return _watch_pooled(super()._get_conn(timeout))
