"""What one delivery attempt ends in: an HTTP answer, or an error with no answer."""

from __future__ import annotations

from dataclasses import dataclass

#: The most response body kept (and read) per attempt.
EXCERPT_BYTES = 2048


@dataclass(frozen=True)
class HTTPResult:
    """An HTTP answer, whatever its status; the caller decides what counts.

    ``excerpt`` is the start of the body, at most EXCERPT_BYTES bytes, decoded
    with the charset of Content-Type (else UTF-8), undecodable bytes replaced.
    ``duration`` is the whole exchange in seconds (monotonic), redirects included.
    ``location`` is the absolute Location of a 3xx that was not followed.
    """

    status_code: int
    excerpt: str
    duration: float
    location: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def message(self) -> str:
        """What the attempt's log says: the excerpt, after the status when not ok.

        A redirect that was not followed names its new location, so the hook's
        URL can be fixed (README, "Internal addresses (SSRF)").
        """
        if self.ok:
            return self.excerpt
        if self.location is not None:
            moved = f"redirected to {self.location} (not followed: update the hook's URL)"
            return f"HTTP {self.status_code}: {moved}. {self.excerpt}".rstrip()
        return f"HTTP {self.status_code}: {self.excerpt}"


class DeliveryError(Exception):
    """An attempt that got no HTTP answer.

    ``message`` is clear and user-facing (it names no secret). ``permanent`` is
    True when retrying cannot help (SSRF refusal, bad URL or header).
    ``duration`` is the time spent on the attempt, in seconds.
    """

    def __init__(self, message: str, *, permanent: bool = False, duration: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.duration = duration


class SSRFError(DeliveryError):
    """The endpoint (or a redirect) leads to an internal address. Always permanent.

    ``host``, ``address`` and ``reason`` say what was refused, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        duration: float = 0.0,
        host: str | None = None,
        address: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, permanent=True, duration=duration)
        self.host = host
        self.address = address
        self.reason = reason
