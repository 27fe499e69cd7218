"""OpenRosa on the webhook URL: the answers ODK Collect and Enketo understand.

- Which requests are OpenRosa's: HEAD, and those with an `X-OpenRosa-Version`
  header (Collect and Enketo send it on every request).
- Their answers: `X-OpenRosa-Version: 1.0`, `X-OpenRosa-Accept-Content-Length`
  and an `OpenRosaResponse` XML body whose `<message>` Collect shows to the
  enumerator; a stored submission, new or already known, is `201`.
- The 401 challenges: `Basic` and `Digest`, realm "Formhooks". Collect
  answers Digest only over http, Basic or Digest over https. The ingest
  token is the password (any user name).

Digest nonces are stateless: the time they were made and an HMAC of it and
of the form uid keyed from SECRET_KEY, so they cannot be forged and expire
after NONCE_LIFETIME seconds. docs/openrosa.md gives the client rules each
piece follows and what Digest does not protect.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import NamedTuple
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree as ET

from flask import Response, current_app, request
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Form
from webapp.models.base import secret_box

VERSION = "1.0"
NAMESPACE = "http://openrosa.org/http/response"
REALM = "Formhooks"
NONCE_LIFETIME = 300  # seconds; an expired nonce gets a `stale=true` challenge
# Collect counts only the files' sizes against X-OpenRosa-Accept-Content-Length
# when it splits an upload (OkHttpConnection.uploadSubmissionAndFiles); the
# multipart framing of up to 103 parts comes on top, so less is announced.
MULTIPART_RESERVE = 128 * 1024

# Characters XML 1.0 cannot hold; error messages may quote what was sent.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def is_openrosa() -> bool:
    """Is the current request an OpenRosa client's? HEAD on the webhook URL always is.

    Collect (OkHttpOpenRosaServerClientProvider) and Enketo (connection.js,
    communicator.js) send `X-OpenRosa-Version` on every request; a multipart
    post is OpenRosa's submission format, so it is answered as one even
    without the header, unless the client asks for JSON with
    `Accept: application/json` (docs/openrosa.md).
    """
    if request.method == "HEAD" or "X-OpenRosa-Version" in request.headers:
        return True
    if request.mimetype != "multipart/form-data":
        return False
    return request.accept_mimetypes.best_match(_ANSWER_TYPES) != "application/json"


# What a multipart post's answer can be, OpenRosa's first: no Accept, or */*,
# as Collect and browsers send, gets OpenRosa XML.
_ANSWER_TYPES = ["text/xml", "application/json"]


def accept_content_length(limit: int) -> int:
    """The X-OpenRosa-Accept-Content-Length for a MAX_SUBMISSION_BYTES of `limit`."""
    return max(limit // 2, limit - MULTIPART_RESERVE)


def _headers(response: Response) -> Response:
    # Date comes from the web server (gunicorn adds it to every answer; a
    # second one from the app would be a duplicate).
    response.headers["X-OpenRosa-Version"] = VERSION
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(
        accept_content_length(current_app.config["MAX_SUBMISSION_BYTES"])
    )
    response.headers["Content-Language"] = "en"
    return response


def answer(status: int, message: str, nature: str = "error") -> Response:
    """An OpenRosaResponse envelope with one `<message>` (unprefixed: Collect's
    ResponseMessageParser looks it up by its plain tag name).
    """
    root = ET.Element("OpenRosaResponse", {"xmlns": NAMESPACE})
    ET.SubElement(root, "message", {"nature": nature}).text = _NOT_XML.sub("\ufffd", message)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    response = Response(body.encode("utf-8"), status=status, content_type="text/xml; charset=utf-8")
    return _headers(response)


def received(created: bool, deliveries: int) -> Response:
    """201 for a stored submission: Collect and Enketo count only 201 and 202 as
    sent, so a known instance (a resend, a later part of a split upload, an
    edit) is 201 too, never 200.
    """
    if created:
        message = "Submission received."
        if deliveries:
            message += f" It will be forwarded to {deliveries} service(s)."
    else:
        message = "Submission received (already known: stored as an update of it)."
    return answer(201, message, "submit_success")


def head_ok() -> Response:
    """HEAD's answer when the token is good: Collect requires 204."""
    return _headers(Response(status=204))


# --- Challenges and Digest ---------------------------------------------------------------


def challenges(form_uid: str, stale: bool = False) -> list[str]:
    """The WWW-Authenticate values of a 401, one per header, Basic first.

    Collect's DispatchingAuthenticator takes the first challenge whose scheme
    it has: over https Basic (the token travels inside TLS), over http Digest,
    the only one it has there. Enketo's proxy reads the joined header and takes
    its first word, Basic. Both challenges name the same realm, since Enketo
    reads the realm from the joined value.
    """
    digest = (
        f'Digest realm="{REALM}", qop="auth", algorithm=MD5, '
        f'nonce="{make_nonce(form_uid, time.time())}"'
    )
    if stale:
        digest += ", stale=true"
    return [f'Basic realm="{REALM}", charset="UTF-8"', digest]


def _nonce_key() -> bytes:
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(secret, b"formhooks openrosa digest nonce", hashlib.sha256).digest()


def _nonce_mac(form_uid: str, stamp: str) -> str:
    message = f"{form_uid}:{stamp}".encode()
    return hmac.new(_nonce_key(), message, hashlib.sha256).hexdigest()[:32]


def make_nonce(form_uid: str, now: float) -> str:
    """A nonce for `form_uid` made at `now` (Unix seconds)."""
    stamp = str(int(now))
    return f"{stamp}.{_nonce_mac(form_uid, stamp)}"


def nonce_state(form_uid: str, nonce: str, now: float) -> str:
    """ "fresh", "stale" (ours, expired) or "forged" (not ours, or not for this form)."""
    stamp, _, mac = nonce.partition(".")
    if not stamp.isdigit() or len(stamp) > 12:
        return "forged"
    if not hmac.compare_digest(mac, _nonce_mac(form_uid, stamp)):
        return "forged"
    age = now - int(stamp)
    if age < -60:  # made in the future: another process's clock may be a little ahead
        return "forged"
    return "fresh" if age <= NONCE_LIFETIME else "stale"


class DigestCheck(NamedTuple):
    token: str | None  # the ingest token when the response is right
    stale: bool = False  # right but for an expired nonce: challenge again with stale=true


def _md5(data: bytes) -> str:
    # RFC 2617's algorithm, the only one Collect's digest authenticator offers here.
    return hashlib.md5(data).hexdigest()  # noqa: S324


def _request_target() -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode("latin-1")
    return request.root_path + request.path + (f"?{query}" if query else "")


def _same_target(digest_uri: str, target: str) -> bool:
    """Does the `uri` of the Digest response name this request (path and query)?"""
    ours, theirs = urlsplit(target), urlsplit(digest_uri)
    return unquote(ours.path) == unquote(theirs.path) and ours.query == theirs.query


def digest_token(form_uid: str, now: float) -> DigestCheck:
    """Check the request's `Authorization: Digest` response for `form_uid`.

    The expected response is computed with the form's ingest token, decrypted
    from its stored copy. qop "auth" and MD5 only, as challenged.
    """
    authorization = request.authorization
    if authorization is None or authorization.type != "digest":
        return DigestCheck(None)
    params = authorization.parameters
    needed = ("username", "realm", "nonce", "uri", "response", "nc", "cnonce")
    if any(params.get(name) is None for name in needed):
        return DigestCheck(None)
    if params["realm"] != REALM or params.get("qop") != "auth":
        return DigestCheck(None)
    if params.get("algorithm", "MD5").upper() != "MD5":
        return DigestCheck(None)
    state = nonce_state(form_uid, params["nonce"], now)
    if state == "forged" or not _same_target(params["uri"], _request_target()):
        return DigestCheck(None)
    encrypted = db.session.scalar(select(Form.ingest_token_encrypted).where(Form.uid == form_uid))
    if encrypted is None:
        return DigestCheck(None)
    try:
        token = secret_box().decrypt(encrypted)
    except ValueError:
        current_app.logger.warning("Digest refused: the form's ingest token cannot be decrypted")
        return DigestCheck(None)
    # Header values reach WSGI as latin-1: encoding back gives the bytes sent.
    user = params["username"].encode("latin-1", "replace")
    ha1 = _md5(user + f":{REALM}:{token}".encode())
    ha2 = _md5(f"{request.method}:{params['uri']}".encode("latin-1", "replace"))
    expected = _md5(
        f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}".encode(
            "latin-1", "replace"
        )
    )
    if not hmac.compare_digest(expected, params["response"].lower()):
        return DigestCheck(None)
    if state == "stale":
        return DigestCheck(None, stale=True)
    return DigestCheck(token)
