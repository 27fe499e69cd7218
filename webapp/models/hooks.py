"""Hooks ("REST services"): where a form's submissions are sent, and how."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.delivery.signatures import OVERLAP, new_secret, previous_signs, signing_keys
from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, secret_box, utcnow
from webapp.models.forms import Form

EXPORT_TYPES = ("json", "xml")
AUTH_LEVELS = ("no_auth", "basic_auth")


class Hook(db.Model):
    """A REST service of a form. Field names follow KoboToolbox's.

    The basic-auth password, the custom header values and the signing
    secrets are stored encrypted; use the `password`, `custom_headers` and
    `signing_secret` properties. The signing secret is made when the hook
    is created (docs/signatures.md); `rotate_signing_secret()` replaces it.
    """

    __tablename__ = "hooks"
    __table_args__ = (Index("ix_hooks_form_active", "form_id", "active"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_uid("h"))
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(2000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    export_type: Mapped[str] = mapped_column(String(8), default="json")
    auth_level: Mapped[str] = mapped_column(String(16), default="no_auth")
    username: Mapped[str] = mapped_column(String(255), default="")
    password_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    custom_headers_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    subset_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    payload_template: Mapped[str | None] = mapped_column(Text, default=None)
    # Off: edits of a submission (new versions) are stored and not sent here.
    send_edits: Mapped[bool] = mapped_column(Boolean, default=False)
    email_notification: Mapped[bool] = mapped_column(Boolean, default=True)
    notification_emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Standard Webhooks signing (webapp.delivery.signatures): the current secret,
    # and the one it replaced, which still signs for a while after rotated_at.
    signing_secret_encrypted: Mapped[str | None] = mapped_column(
        Text, default=lambda: encrypted_new_secret()
    )
    previous_signing_secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    signing_secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    form: Mapped[Form] = relationship(back_populates="hooks")

    @property
    def password(self) -> str:
        if not self.password_encrypted:
            return ""
        return secret_box().decrypt(self.password_encrypted)

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = secret_box().encrypt(value) if value else None

    @property
    def custom_headers(self) -> dict[str, str]:
        if not self.custom_headers_encrypted:
            return {}
        return json.loads(secret_box().decrypt(self.custom_headers_encrypted))

    @custom_headers.setter
    def custom_headers(self, value: dict[str, str]) -> None:
        self.custom_headers_encrypted = (
            secret_box().encrypt(json.dumps(value, ensure_ascii=False)) if value else None
        )

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.auth_level != "basic_auth":
            return None
        return (self.username, self.password)

    @property
    def signing_secret(self) -> str | None:
        """The current signing secret (``whsec_...``); None only for a hook that has
        none yet (see `ensure_signing_secret`)."""
        if not self.signing_secret_encrypted:
            return None
        return secret_box().decrypt(self.signing_secret_encrypted)

    def readable_signing_secret(self) -> str | None:
        """The signing secret, or None when the configured keys cannot decrypt it
        (ENCRYPTION_KEY changed without keeping the old key: rotate it)."""
        try:
            return self.signing_secret
        except ValueError:
            return None

    def signing_keys(self, now: datetime) -> tuple[bytes, ...]:
        """The HMAC keys that sign a send at `now` (the previous one during the overlap)."""
        previous = self.previous_signing_secret_encrypted
        if previous and previous_signs(self.signing_secret_rotated_at, now):
            return signing_keys(self.signing_secret, secret_box().decrypt(previous))
        return signing_keys(self.signing_secret)

    def previous_signs_until(self, now: datetime) -> datetime | None:
        """Until when the secret replaced by the last rotation still signs, if it does."""
        rotated_at = self.signing_secret_rotated_at
        if self.previous_signing_secret_encrypted and previous_signs(rotated_at, now):
            return rotated_at + OVERLAP
        return None

    def rotate_signing_secret(self) -> str:
        """A new signing secret; the current one keeps signing for signatures.OVERLAP.

        The caller commits. A secret replaced earlier (two rotations within the
        overlap) stops signing at once, and so does one that the configured keys
        cannot decrypt.
        """
        secret = new_secret()
        readable = self.readable_signing_secret() is not None
        self.previous_signing_secret_encrypted = self.signing_secret_encrypted if readable else None
        self.signing_secret_encrypted = secret_box().encrypt(secret)
        self.signing_secret_rotated_at = utcnow()
        return secret

    def ensure_signing_secret(self) -> None:
        """Give the hook a secret if it has none (a hook migrated without the app's
        key, see docs/signatures.md); commits then. Safe against a concurrent call:
        the first secret written is kept."""
        if self.signing_secret_encrypted:
            return
        db.session.execute(
            update(Hook)
            .where(Hook.id == self.id, Hook.signing_secret_encrypted.is_(None))
            .values(signing_secret_encrypted=encrypted_new_secret())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        db.session.refresh(self)

    def settings_for_display(self) -> dict[str, Any]:
        """KoboToolbox's `settings` object, with secrets masked."""
        return {
            "username": self.username,
            "custom_headers": {name: mask(v) for name, v in self.custom_headers.items()},
        }

    def __repr__(self) -> str:
        return f"<Hook {self.uid} {self.name!r}>"


def encrypted_new_secret() -> str:
    """A new signing secret, encrypted for storage."""
    return secret_box().encrypt(new_secret())


def mask(value: str) -> str:
    """Never show a secret back in full: keep at most its last 2 characters."""
    if len(value) <= 4:
        return "••••"
    return "••••" + value[-2:]
