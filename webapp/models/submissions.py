"""Submissions as received at a form's webhook URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.forms import Form


class Submission(db.Model):
    """One submission, identified per form by its instance id.

    `body`, `content_type` and `data` are the submission as created: deliveries
    (and their retries) send exactly that. An edit (a re-post of the same
    instance id) goes to the `edited_*` columns and sends nothing.
    `source_format` is "json" (JSON or urlencoded: `data` is the object) or
    "xml" (XML or OpenRosa: `body` is the XML instance, `data` its JSON).
    """

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("form_id", "instance_id", name="uq_submissions_form_instance"),
        Index("ix_submissions_form_created", "form_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"))
    instance_id: Mapped[str] = mapped_column(String(255))
    source_format: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edit_count: Mapped[int] = mapped_column(Integer, default=0)
    edited_content_type: Mapped[str | None] = mapped_column(String(100), default=None)
    edited_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    edited_data: Mapped[Any | None] = mapped_column(JSON, default=None)

    form: Mapped[Form] = relationship()

    @property
    def current_data(self) -> Any:
        """The data as last received (after edits)."""
        return self.edited_data if self.edit_count else self.data

    @property
    def current_body(self) -> bytes:
        return self.edited_body if self.edit_count else self.body

    @property
    def current_content_type(self) -> str:
        return self.edited_content_type if self.edit_count else self.content_type
