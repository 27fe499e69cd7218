"""Signed deliveries, as Standard Webhooks (standardwebhooks.com) defines them.

Every hook has a signing secret, ``whsec_`` + base64 of 32 random bytes.
Every send carries ``webhook-id`` (the delivery log's uid, the same across
retries), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
keyed with the secret's decoded bytes. For OVERLAP after a rotation the old
secret signs too, and both signatures are sent, space-separated (new first).
docs/signatures.md is the receivers' side.

The signature is made when the attempt is sent (``Signer.headers``, called by
the sender), over the exact body bytes sent; so every retry is signed anew.
Imports nothing of the app.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: Random bytes of a new secret (the spec asks for 24 to 64).
SECRET_BYTES = 32
#: How long the previous secret still signs after a rotation.
OVERLAP = timedelta(hours=24)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: Set by Formhooks on every send; no hook may set them (webapp.delivery.headers).
HEADER_NAMES = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

#: Unix seconds now; the one clock of the signatures (tests drive it).
clock: Callable[[], float] = time.time


def new_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of SECRET_BYTES random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: its base64 part, decoded.

    Raises ValueError for a text that is not such a secret.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("A signing secret starts with whsec_.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("A signing secret is whsec_ followed by base64.") from None
    if not key:
        raise ValueError("A signing secret may not be empty.")
    return key


def previous_signs(rotated_at: datetime | None, now: datetime) -> bool:
    """Whether the secret replaced at ``rotated_at`` still signs at ``now``."""
    return rotated_at is not None and now - rotated_at < OVERLAP


def signing_keys(current: str | None, previous: str | None = None) -> tuple[bytes, ...]:
    """The HMAC keys of the secrets that sign (current first), None ones left out."""
    return tuple(secret_key(secret) for secret in (current, previous) if secret)


def signature(keys: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per key, space-separated."""
    prefix = f"{msg_id}.{timestamp}.".encode()
    return " ".join(f"v1,{_mac(key, prefix, body)}" for key in keys)


def _mac(key: bytes, prefix: bytes, body: bytes) -> str:
    """base64(HMAC-SHA256(key, prefix + body)), without copying the body."""
    mac = hmac.new(key, prefix, hashlib.sha256)
    mac.update(body)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True)
class Signer:
    """Signs the sends of one delivery: its id and its hook's keys (never shown)."""

    msg_id: str
    keys: tuple[bytes, ...] = field(repr=False)

    def __post_init__(self) -> None:
        # The spec: an id must not hold a "." (it would blur the signed text's parts).
        if "." in self.msg_id or not self.msg_id:
            raise ValueError("A webhook id must be non-empty and hold no '.'.")

    def headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        """The three headers for a send of ``body`` at ``now`` (default: the clock)."""
        timestamp = int(clock() if now is None else now)
        return {
            ID_HEADER: self.msg_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(self.keys, self.msg_id, timestamp, body),
        }
