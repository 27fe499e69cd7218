"""gunicorn settings of the `web` process (the Procfile: `--config python:webapp.server`).

Each web process is a gevent worker: every connection is a greenlet, so a
client that sends its request slowly (or not at all) costs a little memory,
not one of a handful of threads. With the thread worker, 8 sockets holding a
partial request were enough to stop the web tier (docs/security.md, "Slow
clients and cut bodies", which also gives the cost: concurrent webhook
POSTs are slower, psycopg waiting through gevent instead of in C). gevent
patches the standard library when the worker starts, before the app is
imported; psycopg 3 (3.1.14 and later), redis-py and requests cooperate.

- A request line and headers must arrive within `keepalive` seconds (the
  gevent worker bounds the reading of every request's head by it), then the
  connection is closed.
- A body that stops arriving is cut off after `BODY_READ_TIMEOUT` seconds
  with 408 (webapp/request_body.py).
- `WEB_CONNECTIONS` (the Procfile's `--worker-connections`) bounds the
  connections one process holds; database connections are bounded by the
  pools, not by it (README, "Database connections").

The access log masks ingest tokens given as `?token=` (`AccessLog`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

worker_class = "gevent"
keepalive = 5  # seconds for a request's head, and for an idle keep-alive connection


def mask_query(query: str) -> str:
    """`a=1&token=secret` -> `a=1&token=***`; the key is compared decoded, as Werkzeug reads it."""
    if "=" not in query:
        return query
    parts = query.split("&")
    for index, part in enumerate(parts):
        key, sep, _value = part.partition("=")
        if sep and unquote_plus(key) == "token":
            parts[index] = f"{key}=***"
    return "&".join(parts)


def mask_target(text: str) -> str:
    """The same for anything holding a URL's query (`POST /path?q HTTP/1.1`, a Referer)."""
    path, sep, rest = text.partition("?")
    if not sep:
        return text
    query, space, tail = rest.partition(" ")
    return f"{path}?{mask_query(query)}{space}{tail}"


class AccessLog(Logger):
    """gunicorn's logger, with ingest tokens masked in every access log field."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            # "%": a key may be percent-encoded (`%74oken=`).
            if isinstance(value, str) and "=" in value and ("token" in value or "%" in value):
                is_query = key in ("q", "{query_string}e")
                atoms[key] = mask_query(value) if is_query else mask_target(value)
        return atoms


logger_class = AccessLog
