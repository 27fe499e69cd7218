"""Turning what urllib3 or the socket raised into a clear, user-facing DeliveryError."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator

import urllib3.exceptions

from webapp.delivery.deadline import Exchange
from webapp.delivery.results import DeliveryError


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


def translate(error: Exception, exchange: Exchange) -> DeliveryError:
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
    error: Exception, causes: list[BaseException], exchange: Exchange
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
