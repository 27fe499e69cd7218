"""SUBMISSION_RETENTION_DAYS: deleting old submissions, with everything that is theirs.

A submission is deleted as a whole (the row it was created with, its later
versions and placeholders, their delivery logs and attempts, their files
and the files' chunks) when:

- it was created before the cutoff, and every one of its versions was last
  changed before it (`updated_at`: a new version, a re-post with another
  body). So an old submission edited last week is kept until its newest
  version is as old as the limit;
- none of its delivery logs is pending: not a due or scheduled retry, not
  one a worker holds now, not one parked while its hook is disabled. Failed
  is final: a failed delivery does not keep its submission (it could be
  retried by hand only while the submission is kept).

The counters kept by the database triggers (per hook and status, per form,
per hour) go down with the deleted rows in the same transaction: they count
what is stored.

Each batch looks at up to `batch_size` submissions of one form, oldest
first, walking the (form_id, created_at) index. On PostgreSQL it locks what
it deletes and skips what another transaction holds (`FOR UPDATE SKIP
LOCKED`): a submission whose version is being stored, or whose log is being
retried at that moment, is kept ("busy") and looked at again next run. Once
its rows are locked no new version or log can be added to it (the foreign
keys wait for the lock), so the decision holds until the commit.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import delete, or_, select

from webapp.extensions import db
from webapp.models import (
    PENDING,
    Attachment,
    AttachmentChunk,
    Attempt,
    DeliveryLog,
    Form,
    Submission,
)
from webapp.retention.runs import Counts, Progress, in_ids

Keyset = tuple[datetime, int]


def delete_old_submissions(progress: Progress, cutoff: datetime, batch_size: int, cap) -> bool:
    """Delete the submissions the rules allow, form by form. False if it stopped at `cap`."""
    form_ids = list(db.session.scalars(select(Form.id).order_by(Form.id)))
    for form_id in form_ids:
        after: Keyset | None = None
        while True:
            if progress.counts.submissions_deleted >= cap:
                return False
            after = progress.batch(partial(_batch, form_id, cutoff, after, batch_size))
            if after is None:
                break
    return True


def _batch(form_id: int, cutoff: datetime, after: Keyset | None, size: int):
    query = select(Submission.id, Submission.created_at).where(
        Submission.form_id == form_id,
        Submission.root_id.is_(None),
        Submission.created_at < cutoff,
    )
    if after is not None:
        created, last_id = after
        query = query.where(
            Submission.created_at >= created,
            or_(Submission.created_at > created, Submission.id > last_id),
        )
    roots = db.session.execute(
        query.order_by(Submission.created_at, Submission.id).limit(size)
    ).all()
    if not roots:
        return None
    counts = delete_submissions([root.id for root in roots], cutoff)
    # A short batch was the form's last: None ends the form.
    return counts, (roots[-1].created_at, roots[-1].id) if len(roots) == size else None


def _locked(query) -> set[int]:
    """The ids `query` selects that this transaction could lock (none skipped on SQLite)."""
    return set(db.session.scalars(query.with_for_update(skip_locked=True)))


def delete_submissions(root_ids: list[int], cutoff: datetime) -> Counts:
    """Delete those of these submissions the rules allow, in the caller's transaction."""
    counts = Counts()
    roots = _locked(select(Submission.id).where(in_ids(Submission.id, root_ids)))
    busy = set(root_ids) - roots
    chains: dict[int, list[int]] = {root: [root] for root in roots}
    versions = db.session.execute(
        select(Submission.id, Submission.root_id).where(in_ids(Submission.root_id, roots))
    ).all()
    if versions:
        locked = _locked(select(Submission.id).where(in_ids(Submission.root_id, roots)))
        for version_id, root_id in versions:
            chains[root_id].append(version_id)
            if version_id not in locked:
                busy.add(root_id)
    root_of = {row: root for root, rows in chains.items() for row in rows}
    rows = list(root_of)
    # Read after the locks: what they read cannot change before the commit.
    recent = {
        root_of[row]
        for row in db.session.scalars(
            select(Submission.id).where(
                in_ids(Submission.id, rows), Submission.updated_at >= cutoff
            )
        )
    }
    logs = db.session.execute(
        select(DeliveryLog.id, DeliveryLog.submission_id, DeliveryLog.status).where(
            in_ids(DeliveryLog.submission_id, rows)
        )
    ).all()
    finished = [entry.id for entry in logs if entry.status != PENDING]
    held: set[int] = set()
    if finished:
        still_finished = (in_ids(DeliveryLog.id, finished), DeliveryLog.status != PENDING)
        held = _locked(select(DeliveryLog.id).where(*still_finished))
    pending: set[int] = set()
    for entry in logs:
        if entry.status == PENDING:
            pending.add(root_of[entry.submission_id])
        elif entry.id not in held:  # being changed (a retry?) by another transaction
            busy.add(root_of[entry.submission_id])
    counts.kept_pending = len(pending)
    counts.kept_recent = len(recent - pending)
    counts.kept_busy = len(busy - pending - recent)
    doomed_roots = roots - pending - recent - busy
    doomed = [row for root in doomed_roots for row in chains[root]]
    if doomed:
        # Children first, each by an index on an explicit list of ids (a
        # subquery here made PostgreSQL hash-join whole tables).
        log_ids = [entry.id for entry in logs if root_of[entry.submission_id] in doomed_roots]
        if log_ids:
            _delete(Attempt, in_ids(Attempt.log_id, log_ids))
            counts.logs_deleted = _delete(DeliveryLog, in_ids(DeliveryLog.id, log_ids))
        file_ids = list(
            db.session.scalars(
                select(Attachment.id).where(in_ids(Attachment.submission_id, doomed))
            )
        )
        if file_ids:
            _delete(AttachmentChunk, in_ids(AttachmentChunk.attachment_id, file_ids))
            counts.files_deleted = _delete(Attachment, in_ids(Attachment.id, file_ids))
        # Versions and their submission in one statement: the root_id foreign
        # key is checked at its end.
        _delete(Submission, in_ids(Submission.id, doomed))
        counts.submissions_deleted = len(doomed_roots)
    return counts


def _delete(model, *where) -> int:
    """One DELETE statement (the counter triggers run once for all its rows); its row count."""
    result = db.session.execute(
        delete(model).where(*where).execution_options(synchronize_session=False)
    )
    return result.rowcount
