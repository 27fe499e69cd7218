"""The one place Redis clients are built, so every process connects the same way.

Web, worker, scheduler, RQ and rq-scheduler all use the client made here
(RQ copies its connection class and settings when it opens more), so the
`REDIS_SSL_CERT_REQS` setting applies to each of them. Managed Redis add-ons
hand out `rediss://` URLs whose certificate is self-signed: the default
(`required`) refuses them with an error that names the setting, and `none`
encrypts without checking who answers (docs/deploy.md, "Redis over TLS").
"""

from __future__ import annotations

import ssl

from redis import Redis
from redis.connection import SSLConnection

DEFAULT_URL = "redis://127.0.0.1:6379/0"


class CheckedSSLConnection(SSLConnection):
    """redis-py's TLS connection, whose certificate errors say what to change."""

    def _error_message(self, exception: BaseException) -> str:
        message = super()._error_message(exception)
        if isinstance(exception, ssl.SSLCertVerificationError):
            message += (
                " (REDIS_SSL_CERT_REQS is 'required': the Redis server's certificate "
                "must be valid for its host; for a managed Redis with a self-signed "
                "certificate set REDIS_SSL_CERT_REQS=none, see docs/deploy.md)"
            )
        return message


def connect(url: str | None, cert_reqs: str = "required") -> Redis:
    """A Redis client for `url` (it connects lazily, on first use).

    `cert_reqs` ("required" or "none") applies to `rediss://` URLs
    only; plain and unix-socket URLs have no certificate to check.
    """
    url = url or DEFAULT_URL
    tls = {}
    if url.startswith("rediss://"):
        tls = {"connection_class": CheckedSSLConnection, "ssl_cert_reqs": cert_reqs}
    return Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30, **tls
    )
