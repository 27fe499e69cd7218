"""Requests that reach the app through reverse proxies (`TRUSTED_PROXIES`).

Behind nginx (docs/deploy.md, "A plain Debian server"), every request comes
from the proxy's own address over plain HTTP. Without this, the login
throttle counts every client under the proxy's address (one stranger's
failures block everyone), links made from the request are `http://`, and
HSTS is never sent. With `TRUSTED_PROXIES=N`, Werkzeug's ProxyFix takes the
client's address, scheme, host and port from the last N values of
`X-Forwarded-For`, `-Proto`, `-Host` and `-Port`, which those N proxies
set. `X-Forwarded-Prefix` is not trusted: Formhooks is served at the root.

Set it only when that many proxies really are in front and each sets those
headers: otherwise a client can write them itself.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app: Flask) -> None:
    """Wrap the WSGI app in ProxyFix when TRUSTED_PROXIES is set (the outermost layer)."""
    count = app.config["TRUSTED_PROXIES"]
    if count:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count, x_prefix=0
        )
