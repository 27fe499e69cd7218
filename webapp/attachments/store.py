"""Storing a post's files with its version, and reading them back in chunks.

Called by webapp.ingest's storing inside the transaction that stores the
version, so a delivery never sees a submission without the files it came
with. Rules (docs/attachments.md, "What is kept"):

- A file is kept under its name in the version that brought it. Sent again
  with the same bytes (a resend, a later part of a split upload), it
  changes nothing; with other bytes it is refused (409) and the post
  changes nothing: a link already sent always serves what it was sent for.
- A split upload (`*isIncomplete*=yes` on every part but the last) holds
  the version's pending deliveries for SPLIT_HOLD, so that hooks receive
  all its files: the last part releases them at once; if it never comes,
  they are sent when the hold ends, with the files that arrived.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from webapp.extensions import db
from webapp.models import PENDING, Attachment, AttachmentChunk, DeliveryLog, Submission
from webapp.models.attachments import CHUNK_BYTES
from webapp.models.base import new_uid, utcnow

if TYPE_CHECKING:  # webapp.ingest imports this module
    from webapp.ingest.lookup import StoreResult
    from webapp.ingest.parsing import MediaFile, ParsedSubmission

#: How long the deliveries of a split upload wait for its last part.
SPLIT_HOLD = timedelta(minutes=10)
CHUNKS_PER_INSERT = 8  # at most 2 MB of parameters per statement


def attach(version_id: int, parsed: ParsedSubmission) -> tuple[int, ...]:
    """Store the files of `parsed` with the version, and hold or release its deliveries.

    Returns the ids of held deliveries released now (the last part of a
    split upload), to push to the feed after commit. Raises IngestError
    (409) for a file name stored with other bytes, after rolling back.
    """
    if not parsed.files and not parsed.incomplete:
        return ()
    store_files(version_id, parsed.files)
    now = utcnow()
    waiting = (
        DeliveryLog.submission_id == version_id,
        DeliveryLog.status == PENDING,
        DeliveryLog.tries == 0,
    )
    if parsed.incomplete:
        db.session.execute(
            update(DeliveryLog)
            .where(*waiting)
            .values(next_retry_at=now + SPLIT_HOLD)
            .execution_options(synchronize_session=False)
        )
        return ()
    return tuple(
        db.session.scalars(
            update(DeliveryLog)
            .where(*waiting, DeliveryLog.next_retry_at > now)
            .values(next_retry_at=now)
            .returning(DeliveryLog.id)
            .execution_options(synchronize_session=False)
        )
    )


def attach_to_instance(
    form_id: int, instance_id: str, parsed: ParsedSubmission, result: StoreResult
) -> StoreResult:
    """`attach` for the version of `form_id` with `instance_id`; `result` gains released logs."""
    if not parsed.files and not parsed.incomplete:
        return result
    version_id = db.session.scalar(
        select(Submission.id).where(
            Submission.form_id == form_id, Submission.instance_id == instance_id
        )
    )
    released = attach(version_id, parsed)
    return replace(result, log_ids=result.log_ids + released) if released else result


def store_files(version_id: int, files: Sequence[MediaFile]) -> None:
    """Insert the files the version does not have yet (see the module's rules)."""
    from webapp.ingest.parsing import IngestError  # webapp.ingest imports this module

    if not files:
        return
    stored = dict(
        db.session.execute(
            select(Attachment.filename, Attachment.sha256).where(
                Attachment.submission_id == version_id,
                Attachment.filename.in_([f.filename for f in files]),
            )
        ).all()
    )
    new: list[tuple[MediaFile, str]] = []
    for file in files:
        digest = hashlib.sha256(file.data).hexdigest()
        if file.filename not in stored:
            new.append((file, digest))
        elif stored[file.filename] != digest:
            db.session.rollback()
            raise IngestError(
                409,
                f"A different file named {file.filename!r} is already stored with this "
                "instance; nothing was stored. To change a file, send an edit.",
            )
    if new:
        _insert_files(version_id, new)


def _insert_files(version_id: int, files: list[tuple[MediaFile, str]]) -> None:
    """One statement for the rows, then the chunks by CHUNKS_PER_INSERT: a post of a
    hundred small files costs a few round trips, not two hundred.
    """
    now = utcnow()
    counts = [(len(file.data) + CHUNK_BYTES - 1) // CHUNK_BYTES for file, _ in files]
    ids = db.session.scalars(
        insert(Attachment).returning(Attachment.id, sort_by_parameter_order=True),
        [
            {
                "uid": new_uid("at"),
                "submission_id": version_id,
                "filename": file.filename,
                "mimetype": file.mimetype,
                "size": len(file.data),
                "sha256": digest,
                "chunks": count,
                "created_at": now,
            }
            for (file, digest), count in zip(files, counts, strict=True)
        ],
    ).all()
    batch: list[dict] = []
    for attachment_id, (file, _), count in zip(ids, files, counts, strict=True):
        view = memoryview(file.data)
        for seq in range(count):
            chunk = bytes(view[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES])
            batch.append({"attachment_id": attachment_id, "seq": seq, "data": chunk})
            if len(batch) == CHUNKS_PER_INSERT:
                db.session.execute(insert(AttachmentChunk), batch)
                batch = []
    if batch:
        db.session.execute(insert(AttachmentChunk), batch)


def chunks_of(attachment_id: int, count: int, engine: Engine | None = None) -> Iterator[bytes]:
    """The bytes of an attachment, one chunk at a time, one short query each.

    A connection is borrowed per chunk and given back before the chunk is
    yielded: a slow client holds no connection and no transaction. Stops
    early if the file was deleted meanwhile (the client sees a short body).
    With `engine` given, no app context is needed while iterating (a
    response body outlives its request's context).
    """
    engine = engine or db.engine
    for seq in range(count):
        with engine.connect() as connection:
            data = connection.scalar(
                select(AttachmentChunk.data).where(
                    AttachmentChunk.attachment_id == attachment_id, AttachmentChunk.seq == seq
                )
            )
        if data is None:
            return
        yield bytes(data)
