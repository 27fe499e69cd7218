"""A `requests` adapter that connects only to addresses the SSRF policy allows.

The policy is the hooks' (`address_refusal` in webapp.delivery.addresses, the
README's "Internal addresses (SSRF)"): a name is resolved once, every
address it resolves to is checked, and the socket is connected to a
checked address, so a DNS answer that changes between check and connect
cannot get through. TLS still verifies the certificate against the name in
the URL (urllib3 wraps the socket with `server_hostname=self.host`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The one import of the hooks' SSRF policy in webapp.sources: client.py and
# settings.py take these names from here, so a move of that policy is one edit.
from webapp.delivery.addresses import IPNetwork, address_refusal, endpoint_problems

__all__ = [
    "BlockedAddress",
    "GuardedAdapter",
    "IPNetwork",
    "address_refusal",
    "endpoint_problems",
]


class BlockedAddress(Exception):  # noqa: N818 (a refusal, named as users read it)
    """The host resolves to an address Formhooks must not connect to.

    Not an OSError, so urllib3 does not retry or wrap it: it reaches the caller as is.
    """


def _connect(conn: HTTPConnection, allowed: Sequence[IPNetwork]) -> socket.socket:
    host, port = conn._dns_host.strip("[]"), conn.port  # what urllib3 itself would resolve
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        reason = address_refusal(address, allowed)
        if reason is not None:
            raise BlockedAddress(
                f"{host} resolves to {address}, {reason}; Formhooks does not connect to "
                "internal addresses (see SSRF_ALLOWED_NETWORKS)."
            )
    error: OSError | None = None
    for family, type_, proto, _, sockaddr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            if isinstance(conn.timeout, int | float):
                sock.settimeout(conn.timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


def _pool_classes(allowed: tuple[IPNetwork, ...]) -> dict[str, type]:
    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, allowed)

    class TLSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, allowed)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    return {"http": Pool, "https": TLSPool}


class GuardedAdapter(HTTPAdapter):
    """Mount on a Session for http:// and https://; no retries (the poller decides)."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self._classes = _pool_classes(tuple(allowed))
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._classes
