"""Clients that upload as ODK Collect and Enketo do, for the OpenRosa tests.

Each rule cites the client source it copies (getodk/collect, enketo/enketo-express,
rburgst/okhttp-digest, which Collect uses for authentication). `send` is the
transport: the Flask test client or real HTTP (requests), so one client
drives both.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import quote, urlsplit
from xml.dom import minidom

from werkzeug.datastructures import Headers
from werkzeug.http import parse_dict_header

# (method, url, headers, body) -> (status, headers, body)
Send = Callable[[str, str, dict, bytes], tuple[int, Headers, bytes]]


def flask_send(client) -> Send:
    def send(method, url, headers, body):
        response = client.open(url, method=method, headers=headers, data=body)
        return response.status_code, response.headers, response.get_data()

    return send


def requests_send(session) -> Send:
    def send(method, url, headers, body):
        response = session.request(method, url, headers=headers, data=body, timeout=30)
        headers_out = Headers(list(response.raw.headers.items()))
        return response.status_code, headers_out, response.content

    return send


def md5(text: str) -> str:
    return hashlib.md5(text.encode("latin-1")).hexdigest()  # noqa: S324 (RFC 2617)


class UploadFailed(Exception):
    """What Collect shows for a failed upload (OpenRosaServerInstanceUploader.kt)."""


class AuthRequested(UploadFailed):
    """A 401 on HEAD: Collect asks the enumerator for a user name and password."""


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def multipart(parts: list[Part]) -> tuple[bytes, str]:
    """okhttp3.MultipartBody: a UUID boundary, Content-Length on every part."""
    boundary = str(uuid.uuid4())
    out = b""
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if part.content_type:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        out += f"Content-Length: {len(part.data)}\r\n\r\n".encode() + part.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def collect_posts(
    xml: bytes, files: list[tuple[str, bytes, str]], content_length: int
) -> list[list[Part]]:
    """OkHttpConnection.uploadSubmissionAndFiles: the instance in every post; a new
    post when the next file would pass `content_length` (files' bytes only) or
    after 101 files; `*isIncomplete*=yes` on every post but the last.
    """
    posts: list[list[Part]] = []
    index, first = 0, True
    while index < len(files) or first:
        last, first = index, False
        parts = [Part("xml_submission_file", xml, "submission.xml", "text/xml")]
        byte_count = len(xml)
        while index < len(files):
            name, data, content_type = files[index]
            parts.append(Part(name, data, name, content_type))
            byte_count += len(data)
            if index + 1 < len(files) and (
                index - last + 1 > 100 or byte_count + len(files[index + 1][1]) > content_length
            ):
                parts.append(Part("*isIncomplete*", b"yes"))
                index += 1
                break
            index += 1
        posts.append(parts)
    return posts


def response_message(body: bytes) -> str | None:
    """ResponseMessageParser.java: a DOM that is not namespace-aware, first <message>."""
    text = body.decode("utf-8", "replace")
    if "OpenRosaResponse" not in text:
        return None
    # The answer of the server under test, parsed as Collect parses it.
    found = minidom.parseString(body).getElementsByTagName("message")  # noqa: S318
    return found[0].firstChild.data if found and found[0].firstChild else None


@dataclass
class Collect:
    """ODK Collect uploading instances to a form's submission URL.

    OkHttpOpenRosaServerClientProvider.java: every request carries
    X-OpenRosa-Version and Date; Digest is always registered, Basic only over
    https; okhttp-digest's CachingAuthenticatorDecorator and
    AuthenticationCacheInterceptor then authenticate later requests
    preemptively (the same nonce, nc + 1), and drop the cache on a 401.
    """

    send: Send
    username: str = ""  # WebCredentialsUtils.getCredentials: ("", "") when none are saved
    password: str = ""
    device_id: str = "collect:Xr2kd8slQpT0aBcD"
    exchanges: list[tuple[str, int, str]] = field(default_factory=list)
    cached: bool = False
    digest_params: dict | None = None
    last_nonce: str | None = None
    nc: int = 0
    cnonce: str = ""

    def _exchange(self, method, url, headers, body):
        status, response_headers, response_body = self.send(method, url, headers, body)
        scheme = headers.get("Authorization", "none").split(" ")[0]
        self.exchanges.append((method, status, scheme))
        return status, response_headers, response_body

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode("latin-1")
        return "Basic " + base64.b64encode(raw).decode()

    def _digest(self, method: str, url: str, params: dict) -> str:
        """DigestAuthenticator.createDigestHeader, qop=auth, MD5."""
        nonce = params["nonce"]
        if nonce == self.last_nonce:
            self.nc += 1
        else:
            self.nc, self.cnonce, self.last_nonce = 1, secrets.token_hex(8), nonce
        split = urlsplit(url)
        target = split.path + (f"?{split.query}" if split.query else "")
        nc = f"{self.nc:08x}"
        ha1 = md5(f"{self.username}:{params['realm']}:{self.password}")
        ha2 = md5(f"{method}:{target}")
        response = md5(f"{ha1}:{nonce}:{nc}:{self.cnonce}:auth:{ha2}")
        return (
            f'Digest username="{self.username}", realm="{params["realm"]}", nonce="{nonce}", '
            f'uri="{target}", response="{response}", qop=auth, nc={nc}, '
            f'cnonce="{self.cnonce}", algorithm=MD5'
        )

    def _https(self, url: str) -> bool:
        return url.startswith("https:")

    def _authenticate(self, method, url, request_headers, response_headers):
        """DispatchingAuthenticator: the first challenge whose scheme is registered."""
        previous = request_headers.get("Authorization", "")
        for value in response_headers.getlist("WWW-Authenticate"):
            scheme = value.split(" ", 1)[0].lower()
            if scheme == "digest":
                params = parse_dict_header(value[7:])
                stale = (params.get("stale") or "").lower() == "true"
                if previous.startswith("Digest") and not stale:
                    return None  # "Previous digest authentication with same nonce failed"
                self.digest_params = params
                return {**request_headers, "Authorization": self._digest(method, url, params)}
            if scheme == "basic" and self._https(url):
                if previous.startswith("Basic"):
                    return None  # "Previous basic authentication failed"
                return {**request_headers, "Authorization": self._basic()}
        return None

    def _with_state(self, method, url, headers):
        """DispatchingAuthenticator.authenticateWithState: digest first, then basic."""
        if self.digest_params is not None:
            return {**headers, "Authorization": self._digest(method, url, self.digest_params)}
        if self._https(url):
            return {**headers, "Authorization": self._basic()}
        return None

    def _proceed(self, method, url, headers, body):
        """OkHttp's RetryAndFollowUpInterceptor: answer 401s with the authenticator."""
        for _ in range(20):
            status, response_headers, response_body = self._exchange(method, url, headers, body)
            if status != 401:
                break
            follow = self._authenticate(method, url, headers, response_headers)
            if follow is None:
                break
            self.cached = True  # CachingAuthenticatorDecorator
            headers = follow
        return status, response_headers, response_body

    def call(self, method: str, url: str, body: bytes = b"", content_type: str | None = None):
        headers = {
            "User-Agent": "org.odk.collect.android/v2026.2.0 okhttp/4.12.0",
            "X-OpenRosa-Version": "1.0",
            "Date": formatdate(usegmt=True),
        }
        if content_type:
            headers["Content-Type"] = content_type
        preemptive = self._with_state(method, url, headers) if self.cached else None
        status, response_headers, response_body = self._proceed(
            method, url, preemptive or headers, body
        )
        if preemptive is not None and status == 401:
            # AuthenticationCacheInterceptor: "Cached authentication expired".
            self.cached = False
            status, response_headers, response_body = self._proceed(method, url, headers, body)
        return status, response_headers, response_body

    def submission_url(self, action: str) -> str:
        """OpenRosaServerInstanceUploader.getUrlToSubmitTo: `deviceID` appended."""
        separator = "&" if urlsplit(action).query else "?"
        return f"{action}{separator}deviceID={quote(self.device_id, safe='')}"

    def upload(self, action: str, xml: bytes, files: list[tuple[str, bytes, str]] = ()):
        """OpenRosaServerInstanceUploader.uploadOneSubmission: HEAD, then the posts.

        Returns the server's message; raises UploadFailed as Collect fails.
        """
        url = self.submission_url(action)
        status, headers, _ = self.call("HEAD", url)
        content_length = 10_000_000
        if status == 401:
            raise AuthRequested(f"Server {urlsplit(url).hostname} requires credentials")
        if status == 204:
            if "X-OpenRosa-Accept-Content-Length" in headers:
                content_length = int(headers["X-OpenRosa-Accept-Content-Length"])
        elif 200 <= status < 300:
            raise UploadFailed(f"Is this an OpenRosa submission endpoint? HEAD {status}")
        self.posts = collect_posts(xml, list(files), content_length)
        message = None
        for parts in self.posts:
            body, content_type = multipart(parts)
            status, _, answer = self.call("POST", url, body, content_type)
            message = response_message(answer)
            if status not in (201, 202):  # OkHttpConnection: stop at the first failure
                if status == 200:
                    raise UploadFailed("Error: Network login failure? Again?")
                if status == 401:
                    raise UploadFailed(f"Error: Unauthorized ({status})")
                if message is not None:
                    raise UploadFailed(f"Error: {message}")
                raise UploadFailed(f"Error: ({status})")
        return message


def enketo_headers(instance_id: str, deprecated_id: str | None = None) -> dict:
    """What reaches the server from Enketo: connection.js `_uploadBatch` (the
    browser's headers, piped by submission-controller.js) and communicator.js
    `getUpdatedRequestHeaders`. `fetch` turns an undefined deprecatedId into
    the string "undefined".
    """
    return {
        "X-OpenRosa-Version": "1.0",
        "X-OpenRosa-Instance-Id": instance_id,
        "X-OpenRosa-Deprecated-Id": deprecated_id if deprecated_id else "undefined",
        "Date": formatdate(usegmt=True),
        "User-Agent": "Enketo/7.2.0 Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    }


def enketo_auth_header(challenge: str, username: str, password: str, method: str, path: str):
    """request's Auth.onResponse, as communicator.getAuthHeader uses it: the joined
    WWW-Authenticate's first word picks the scheme; the realm is the last one
    its regex finds.
    """
    verb = challenge.split(" ")[0].lower()
    if verb == "basic":
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    params = dict(
        (m[0], m[1] or m[2])
        for m in re.findall(r'([a-z0-9_-]+)=(?:"([^"]+)"|([a-z0-9_-]+))', challenge, re.I)
    )
    cnonce = secrets.token_hex(16)
    ha1 = md5(f"{username}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{path}")
    response = md5(f"{ha1}:{params['nonce']}:00000001:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{username}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{path}", qop=auth, response="{response}", nc=00000001, cnonce="{cnonce}"'
    )
