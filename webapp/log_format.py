"""`LOG_FORMAT=json`: one JSON object per log line, for log platforms that parse them.

Each line has `timestamp` (UTC, ISO 8601), `level`, `logger`, `process`
and `message`, plus `exc_info` when an exception is logged, and any
`extra=` fields. Messages are the same as in text mode, which never carry
secrets (docs/security.md). Applied to the process's root logger (web,
worker and scheduler all call `create_app()`) and to gunicorn's own
loggers, whose access lines become the `message` of a JSON object.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask
from pythonjsonlogger.json import JsonFormatter

GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


class _JsonHandler(logging.StreamHandler):
    """The handler installed here, told apart from any other on the root logger."""


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(levelname)s %(name)s %(processName)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "processName": "process"},
        timestamp=True,
    )


def init_app(app: Flask) -> None:
    """Switch this process's logs to JSON when LOG_FORMAT=json; text mode changes nothing."""
    if app.config["LOG_FORMAT"] != "json":
        return
    formatter = json_formatter()
    root = logging.getLogger()
    for handler in list(root.handlers):
        # basicConfig's text handler (worker, scheduler) or ours from an earlier app.
        if type(handler) in (logging.StreamHandler, _JsonHandler):
            root.removeHandler(handler)
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for name in GUNICORN_LOGGERS:
        for gunicorn_handler in logging.getLogger(name).handlers:
            gunicorn_handler.setFormatter(formatter)
