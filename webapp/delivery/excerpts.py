"""Reading an answer: at most EXCERPT_BYTES of its body, decoded for people."""

from __future__ import annotations

import codecs
import http.client
import zlib
from collections.abc import Mapping

import urllib3
import urllib3.exceptions

from webapp.delivery.deadline import Exchange
from webapp.delivery.results import EXCERPT_BYTES, HTTPResult

_READ_CHUNK = 1024


def read_result(
    exchange: Exchange, response: urllib3.BaseHTTPResponse, location: str | None
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
