"""Hooks ("REST services"): where a form's submissions are sent, and how."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, secret_box, utcnow
from webapp.models.forms import Form

EXPORT_TYPES = ("json", "xml")
AUTH_LEVELS = ("no_auth", "basic_auth")


class Hook(db.Model):
    """A REST service of a form. Field names follow KoboToolbox's.

    The basic-auth password and the custom header values are stored
    encrypted; use the `password` and `custom_headers` properties.
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

    def settings_for_display(self) -> dict[str, Any]:
        """KoboToolbox's `settings` object, with secrets masked."""
        return {
            "username": self.username,
            "custom_headers": {name: mask(v) for name, v in self.custom_headers.items()},
        }

    def __repr__(self) -> str:
        return f"<Hook {self.uid} {self.name!r}>"


def mask(value: str) -> str:
    """Never show a secret back in full: keep at most its last 2 characters."""
    if len(value) <= 4:
        return "••••"
    return "••••" + value[-2:]
