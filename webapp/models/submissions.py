"""Submissions as received at a form's webhook URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    and_,
    case,
    func,
    null,
)
from sqlalchemy.orm import Mapped, load_only, mapped_column, relationship
from sqlalchemy.orm.interfaces import LoaderOption

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


# Lists read these columns only: a body (and its parsed data) can be megabytes.
def summary_only() -> LoaderOption:
    """A loader option that leaves the bodies and data unloaded (reading them would query)."""
    return load_only(
        Submission.id,
        Submission.form_id,
        Submission.instance_id,
        Submission.source_format,
        Submission.content_type,
        Submission.edited_content_type,
        Submission.created_at,
        Submission.updated_at,
        Submission.edit_count,
        raiseload=True,
    )


def _current_body() -> ColumnElement[bytes]:
    return case((Submission.edit_count > 0, Submission.edited_body), else_=Submission.body)


def current_body_size() -> ColumnElement[int]:
    """The size in bytes of the body as last received, computed by the database.

    Bodies are bytes (BLOB, bytea): length() counts bytes on SQLite and PostgreSQL.
    """
    return func.length(_current_body()).label("body_size")


def current_body_excerpt(size: int) -> ColumnElement[bytes]:
    """The first `size` bytes of the body as last received, cut by the database."""
    return func.substr(_current_body(), 1, size, type_=LargeBinary).label("body_excerpt")


def current_data_up_to(size: int) -> ColumnElement[Any]:
    """The data as last received when its body is at most `size` bytes, else NULL.

    The database decides, so a big body's data is never sent to Python.
    """
    edited = Submission.edit_count > 0
    return case(
        (and_(edited, func.length(Submission.edited_body) <= size), Submission.edited_data),
        (and_(~edited, func.length(Submission.body) <= size), Submission.data),
        else_=null(),
    ).label("small_data")
