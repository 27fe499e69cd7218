"""Sources: a server Formhooks pulls a form's submissions from (ODK Central).

One source per form at most. The login's password and the cached Central
session token are stored encrypted (like hook passwords). The poller's state
lives here too: the two cursors (how far submissions and their edits have
been read), the lease that keeps two workers from polling the same source at
once, and the status shown to people (docs/central.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, secret_box, utcnow
from webapp.models.forms import Form

SOURCE_KINDS = ("odk_central",)
SOURCE_OK = "ok"
SOURCE_ERROR = "error"


class Source(db.Model):
    """Where a form's submissions are pulled from, and how far they have been read.

    `created_cursor` and `updated_cursor` are Central times (its clock): every
    submission made at or after `created_cursor`, and every change at or
    after `updated_cursor`, is still to be looked at; what is before has been
    stored. `connected_at` splits "made before connecting" (stored, sent only
    with `send_backfill`) from new submissions (sent).
    """

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_uid("s"))
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="odk_central")
    url: Mapped[str] = mapped_column(String(2000))
    project_id: Mapped[int] = mapped_column(Integer)
    xml_form_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255))
    password_encrypted: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    send_backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    status: Mapped[str] = mapped_column(String(16), default=SOURCE_OK)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    error_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # A failure digest run's lease on this error (webapp.reports.source_errors).
    error_report_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    received_count: Mapped[int] = mapped_column(Integer, default=0)

    created_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(32), default=None)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    session_token_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    date_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    form: Mapped[Form] = relationship(
        backref=db.backref("source", uselist=False, cascade="all, delete-orphan")
    )

    @property
    def password(self) -> str:
        return secret_box().decrypt(self.password_encrypted) if self.password_encrypted else ""

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = secret_box().encrypt(value)

    @property
    def start(self) -> datetime:
        """The oldest submission time this source covers: `since`, else the connection."""
        return self.since or self.connected_at

    def reset_cursors(self) -> None:
        """Read again from `start` (what is stored already is recognised and skipped)."""
        self.created_cursor = self.start
        self.updated_cursor = self.start

    def __repr__(self) -> str:
        return f"<Source {self.uid} {self.kind} {self.url} {self.project_id}/{self.xml_form_id}>"
