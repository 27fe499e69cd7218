"""Submissions as received at a form's webhook URL, with their versions.

Each row is one version of a submission, identified in its form by its
instance id (unique per form, which is what keeps concurrent posts of one
chain from making two submissions: see webapp/ingest/versions.py). The row
a submission was created with (the first version received) has `root_id`
NULL and is "the submission": its id is the submission's id in the panel
and the API, its instance id the submission's stable `root_instance_id`.
Later versions (edits, and originals that arrive after their edit) point at
it with `root_id`. A row with `received` false is a placeholder: an instance
id that a received version named as the one it replaces, kept so that when
it arrives it is linked into the chain, not stored as a new submission.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    ScalarSelect,
    String,
    UniqueConstraint,
    and_,
    case,
    func,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, aliased, load_only, mapped_column, relationship
from sqlalchemy.orm.interfaces import LoaderOption
from sqlalchemy.orm.util import AliasedClass

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.forms import Form

# The content types a version is stored with (ingest writes them, delivery
# reads them): the body as received is JSON, urlencoded (`data` is its
# object) or an XML instance.
JSON_CONTENT_TYPE = "application/json"
XML_CONTENT_TYPE = "application/xml"
URLENCODED_CONTENT_TYPE = "application/x-www-form-urlencoded"
STORED_CONTENT_TYPES = (JSON_CONTENT_TYPE, URLENCODED_CONTENT_TYPE, XML_CONTENT_TYPE)

CREATED, EDITED = "submission.created", "submission.edited"


def _own_instance_id(context) -> str:
    """A row inserted without a root instance id is a submission of its own."""
    return context.get_current_parameters()["instance_id"]


class Submission(db.Model):
    """One version of a submission (see the module's docstring).

    `body`, `content_type` and `data` are the version as first received:
    deliveries of it (and their retries) send exactly that. A re-post of the
    same instance id with another body goes to the `edited_*` columns and
    sends nothing. `source_format` is "json" (JSON or urlencoded: `data` is
    the object) or "xml" (XML or OpenRosa: `body` is the XML instance, `data`
    its JSON). `position` orders the versions of a submission (ties by id);
    `deprecated_id` is the instance id this version said it replaces.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("form_id", "instance_id", name="uq_submissions_form_instance"),
        Index("ix_submissions_form_created", "form_id", "created_at"),
        Index("ix_submissions_root", "root_id"),
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
    # No ON DELETE action: a submission is deleted with its versions (its
    # form's deletion cascades to all of them), never leaving them orphaned.
    root_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), default=None)
    root_instance_id: Mapped[str] = mapped_column(String(255), default=_own_instance_id)
    deprecated_id: Mapped[str | None] = mapped_column(String(255), default=None)
    position: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[bool] = mapped_column(Boolean, default=True)

    form: Mapped[Form] = relationship()

    @property
    def current_data(self) -> Any:
        """The data as last received for this instance id (after re-posts)."""
        return self.edited_data if self.edit_count else self.data

    @property
    def current_body(self) -> bytes:
        return self.edited_body if self.edit_count else self.body

    @property
    def current_content_type(self) -> str:
        return self.edited_content_type if self.edit_count else self.content_type

    @property
    def submission_id(self) -> int:
        """The id of the submission this version belongs to."""
        return self.root_id if self.root_id is not None else self.id

    @property
    def event(self) -> str:
        return event_of(self.root_id)


def event_of(root_id: int | None) -> str:
    """What sending a version is: the creation of its submission, or an edit."""
    return CREATED if root_id is None else EDITED


def event_headers(root_id: int | None, root_instance_id: str) -> dict[str, str]:
    """The headers every send of a version carries (README "What a hook sends")."""
    return {
        "X-Formhooks-Event": event_of(root_id),
        "X-Formhooks-Submission": root_instance_id,
    }


def versions_of(submission_id: int) -> list[Submission]:
    """The received versions of a submission, oldest first."""
    return list(
        db.session.scalars(
            select(Submission)
            .where(
                or_(Submission.id == submission_id, Submission.root_id == submission_id),
                Submission.received.is_(True),
            )
            .order_by(Submission.position, Submission.id)
        )
    )


def version_counts(submission_ids: list[int]) -> dict[int, int]:
    """{submission id: number of received versions} in one query (1 when no edit)."""
    counts = dict.fromkeys(submission_ids, 1)
    if submission_ids:
        rows = db.session.execute(
            select(Submission.root_id, func.count())
            .where(Submission.root_id.in_(submission_ids), Submission.received.is_(True))
            .group_by(Submission.root_id)
        )
        for root_id, count in rows:
            counts[root_id] += count
    return counts


# Lists read these columns only: a body (and its parsed data) can be megabytes.
_SUMMARY_COLUMNS = (
    "id",
    "form_id",
    "instance_id",
    "source_format",
    "content_type",
    "edited_content_type",
    "created_at",
    "updated_at",
    "edit_count",
    "root_id",
    "root_instance_id",
    "deprecated_id",
    "position",
    "received",
)

Entity = type[Submission] | AliasedClass[Submission]


def summary_only(entity: Entity = Submission) -> LoaderOption:
    """A loader option that leaves the bodies and data unloaded (reading them would query).

    `entity` is Submission or an alias of it (such as latest_version()'s).
    """
    return load_only(*(getattr(entity, name) for name in _SUMMARY_COLUMNS), raiseload=True)


def latest_version_id() -> ScalarSelect[int]:
    """The id of the latest received version of the submission row of the outer query.

    A scalar subquery correlated to `Submission` (a row with `root_id` NULL):
    the version last in the order of versions_of(), itself when it has no edit.
    """
    other = aliased(Submission, name="chain_version")
    return (
        select(other.id)
        .where(
            or_(other.id == Submission.id, other.root_id == Submission.id),
            other.received.is_(True),
        )
        .order_by(other.position.desc(), other.id.desc())
        .limit(1)
        .correlate(Submission)
        .scalar_subquery()
    )


def latest_version() -> tuple[AliasedClass[Submission], ColumnElement[bool]]:
    """An alias for the latest received version of each submission row, and its join.

    Join the alias on the condition to a query of submissions (rows with
    `root_id` NULL, selected as `Submission`): each gets its latest_version_id()
    version, in the same query.
    """
    latest = aliased(Submission, name="latest_version")
    return latest, latest.id == latest_version_id()


def _current_body(entity: Entity) -> ColumnElement[bytes]:
    return case((entity.edit_count > 0, entity.edited_body), else_=entity.body)


def current_body_size(entity: Entity = Submission) -> ColumnElement[int]:
    """The size in bytes of the body as last received, computed by the database.

    Bodies are bytes (BLOB, bytea): length() counts bytes on SQLite and PostgreSQL.
    """
    return func.length(_current_body(entity)).label("body_size")


def current_body_excerpt(size: int, entity: Entity = Submission) -> ColumnElement[bytes]:
    """The first `size` bytes of the body as last received, cut by the database."""
    return func.substr(_current_body(entity), 1, size, type_=LargeBinary).label("body_excerpt")


def current_data_up_to(size: int, entity: Entity = Submission) -> ColumnElement[Any]:
    """The data as last received when its body is at most `size` bytes, else NULL.

    The database decides, so a big body's data is never sent to Python.
    """
    edited = entity.edit_count > 0
    return case(
        (and_(edited, func.length(entity.edited_body) <= size), entity.edited_data),
        (and_(~edited, func.length(entity.body) <= size), entity.data),
        else_=null(),
    ).label("small_data")
