"""Request bodies read safely: one cut short is refused, one that stalls is given up.

A WSGI server that frames bodies itself says so with `wsgi.input_terminated`,
and Werkzeug then reads `wsgi.input` as it is instead of wrapping it in its
Content-Length check (`LimitedStream`, which raises `ClientDisconnected`).
gunicorn does that, and its reader simply returns fewer bytes when the client
closes early, so a truncated body read like a complete one. `BodyGuard` wraps
`wsgi.input` for every request that has a body (the webhook, the panel's
forms) so that:

- a body that ends before its `Content-Length`, or a chunked body that ends
  without its last chunk, raises `IncompleteBody` (400);
- a body that stops arriving raises `BodyReadTimeout` (408) once nothing came
  for `BODY_READ_TIMEOUT` seconds (an idle timeout between two reads, as
  nginx's `client_body_timeout`).

The timeout needs the client socket: gunicorn gives it as `gunicorn.socket`;
under another server (or the test client) only the length check applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.exceptions import BadRequest, HTTPException, RequestTimeout

INCOMPLETE = (
    "The request body is incomplete: the connection ended before the end of the body "
    "(its Content-Length, or the last chunk). Nothing was stored."
)


class IncompleteBody(BadRequest):
    description = INCOMPLETE


class BodyReadTimeout(RequestTimeout):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The request body stopped arriving: nothing came for {seconds:g} s. "
            "Nothing was stored."
        )


class GuardedInput:
    """`wsgi.input` that raises instead of returning a body shorter than announced.

    `length` is the Content-Length (None for a chunked body, whose reader
    raises by itself when the last chunk is missing).
    """

    def __init__(self, stream: Any, length: int | None, timeout: float) -> None:
        self._stream = stream
        self._left = length
        self._timeout = timeout

    def _read(self, method: Callable[..., bytes], size: int | None) -> bytes:
        try:
            data = method() if size is None else method(size)
        except HTTPException:
            raise
        except TimeoutError:  # the socket timeout set by BodyGuard
            raise BodyReadTimeout(self._timeout) from None
        except Exception as exc:
            # gunicorn reports a cut chunked body with its own exceptions
            # (NoMoreData, an OSError; ChunkMissingTerminator, a parse error).
            raise IncompleteBody() from exc
        if self._left is not None:
            if not data and size != 0 and self._left > 0:
                raise IncompleteBody()
            self._left -= len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._read(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._read(self._stream.readline, size)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def _content_length(environ: dict) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None  # Werkzeug refuses or ignores it
    return length if length > 0 else None


class BodyGuard:
    """WSGI middleware: wraps `wsgi.input` of requests with a body (see the module doc)."""

    def __init__(self, app: Callable, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        length = _content_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if length is None and not chunked:
            return self.app(environ, start_response)
        environ["wsgi.input"] = GuardedInput(
            environ["wsgi.input"], None if chunked else length, self.timeout
        )
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return self.app(environ, start_response)
        previous = sock.gettimeout()
        sock.settimeout(self.timeout)
        try:
            # Views read the body before they return; the response is sent
            # afterwards, under the server's own timeout again.
            return self.app(environ, start_response)
        finally:
            sock.settimeout(previous)
