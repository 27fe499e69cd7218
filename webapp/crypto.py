"""Encryption of stored secrets (hook passwords, header values, ingest tokens).

Keys: `ENCRYPTION_KEY` is a comma-separated list of Fernet keys or passphrases;
the first encrypts, all decrypt, so a key can be rotated by putting the new one
first and running `flask --app webapp secrets rotate`. Without it, one key is
derived from `SECRET_KEY`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    """Encrypts and decrypts short strings with MultiFernet."""

    def __init__(self, encryption_key: str | None, secret_key: str) -> None:
        raw_keys = [k.strip() for k in (encryption_key or "").split(",") if k.strip()]
        if not raw_keys:
            raw_keys = [secret_key]
        self._fernet = MultiFernet([Fernet(_as_fernet_key(k)) for k in raw_keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Raises ValueError when no configured key can decrypt `token`."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ValueError(
                "Cannot decrypt a stored secret: ENCRYPTION_KEY or SECRET_KEY changed "
                "without keeping the old key"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` with the first key. ValueError if no key decrypts it."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise ValueError(
                "Cannot decrypt a stored secret with any key of ENCRYPTION_KEY"
            ) from None


def _as_fernet_key(key: str) -> bytes:
    """A Fernet key as given, or one derived from a passphrase."""
    try:
        if len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32:
            return key.encode("ascii")
    except (ValueError, UnicodeEncodeError):
        pass
    digest = hashlib.sha256(b"formhooks-secret-box:" + key.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest)


def token_matches(candidate: str, stored_digest: str) -> bool:
    """Does `candidate` hash to `stored_digest`? Constant time in the digests."""
    return hmac.compare_digest(token_digest(candidate), stored_digest)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a high-entropy token, for storage and constant-time lookup."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
