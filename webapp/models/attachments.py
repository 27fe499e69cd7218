"""Files posted with a submission (photos, recordings, signatures), in the database.

An attachment belongs to the version (a row of `submissions`) whose post
brought it, and is named in that version by its file name, as the instance
names it. Its bytes are rows of `attachment_chunks` of at most CHUNK_BYTES,
so that every supported database holds them (no local disk, which platforms
such as Heroku wipe) and serving reads one chunk at a time. Deleting a
version (or its form) deletes its attachments and their chunks (ON DELETE
CASCADE). docs/attachments.md has the rules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, utcnow

#: The size of a stored chunk: small enough that serving holds little, large
#: enough that a 10 MB file is 40 rows.
CHUNK_BYTES = 256 * 1024


class Attachment(db.Model):
    """One file of one version: its name, type, size, SHA-256 and chunk count.

    Its content never changes once stored: a signed link already sent
    always serves the bytes it was sent for.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("submission_id", "filename", name="uq_attachments_submission_filename"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_uid("at"))
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    mimetype: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttachmentChunk(db.Model):
    """Bytes [seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES) of an attachment."""

    __tablename__ = "attachment_chunks"

    attachment_id: Mapped[int] = mapped_column(
        ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
