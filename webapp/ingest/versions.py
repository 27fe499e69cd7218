"""Storing a submission that belongs to a chain of versions (edits).

webapp.ingest.storing calls `receive_version` for a post that names an
earlier instance (webapp.ingest.identity's EditRefs), and for an instance id
it found already stored (a re-post, or an original whose edit came first).

- A known received instance id is a re-post: the same body changes nothing;
  another body replaces that version's stored data (`edited_*`), sends nothing.
- A post naming a known instance id of the form (any version, placeholders
  included) is a new version of that submission, sent to the hooks with
  `send_edits` on.
- A post naming only unknown ids is a new submission, sent as a creation.
- Every id a version names and the form has not received is kept as a
  placeholder row of that chain, so that when it arrives it is linked in as
  an earlier version and sent to nobody (the receivers have a newer one).

Concurrency: every instance id a chain knows, received or named, is a row
under the unique (form_id, instance_id). Two requests touching one id cannot
both insert it: on PostgreSQL the second waits for the first to commit and
fails; it then starts again (a new transaction, which sees the first one's
rows) and joins that chain. So an original and its edit arriving at once
make one submission, whichever commits first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import psycopg
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from webapp.attachments.store import attach_to_instance
from webapp.extensions import db
from webapp.ingest.identity import EditRefs
from webapp.ingest.lookup import IngestForm, StoreResult
from webapp.ingest.parsing import ParsedSubmission
from webapp.models import DeliveryLog, Submission
from webapp.models.base import new_uid, utcnow

ATTEMPTS = 4  # each lost race adds rows the next attempt finds: a few are plenty


class VersionGone(Exception):
    """A row this post was changing was deleted meanwhile (by webapp.retention): look again."""


def receive_version(
    form: IngestForm,
    instance_id: str,
    parsed: ParsedSubmission,
    refs: EditRefs,
    *,
    send: bool = True,
) -> StoreResult:
    """Store `parsed` for `form` as a version, re-post or new submission; commits.

    `send=False` creates no delivery logs (a source's backfill): the version
    is stored exactly as it would be otherwise, and sent to no hook.
    """
    if not send:
        form = replace(form, active_hook_ids=(), edit_hook_ids=())
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = _store(form, instance_id, parsed, refs)
            result = attach_to_instance(form.id, instance_id, parsed, result)  # its files
            db.session.commit()
            return result
        except (IntegrityError, OperationalError, VersionGone) as exc:
            # Another request stored one of these instance ids first (or two
            # requests each hold an id the other inserts), or the version
            # was deleted meanwhile (retention): look again.
            db.session.rollback()
            if attempt == ATTEMPTS or not _lost_a_race(exc):
                raise
    raise AssertionError("unreachable")


def _lost_a_race(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError | VersionGone):
        return True
    return isinstance(getattr(exc, "orig", None), psycopg.errors.DeadlockDetected)


def insert_logs(hook_ids: Sequence[int], submission_id: int, now) -> tuple[int, ...]:
    """One pending log per hook for the version `submission_id`, due now."""
    if not hook_ids:
        return ()
    rows = [
        {
            "uid": new_uid("hl"),
            "hook_id": hook_id,
            "submission_id": submission_id,
            "status": "pending",
            "tries": 0,
            "message": "",
            "date_created": now,
            "date_modified": now,
            "next_retry_at": now,
        }
        for hook_id in hook_ids
    ]
    return tuple(db.session.scalars(insert(DeliveryLog).returning(DeliveryLog.id), rows))


def _store(form: IngestForm, instance_id: str, parsed: ParsedSubmission, refs: EditRefs):
    wanted = [instance_id, *refs.candidates()]
    known = {
        row.instance_id: row
        for row in db.session.execute(
            select(
                Submission.id,
                Submission.instance_id,
                Submission.root_id,
                Submission.root_instance_id,
                Submission.received,
                Submission.position,
            ).where(Submission.form_id == form.id, Submission.instance_id.in_(wanted))
        )
    }
    now = utcnow()
    own = known.get(instance_id)
    if own is not None and own.received:
        return _repost(own, instance_id, parsed, now)
    if own is not None:  # a placeholder: this version arrived after one that replaced it
        filled = db.session.execute(
            update(Submission)
            .where(Submission.id == own.id)
            .values(
                **_content(parsed),
                received=True,
                deprecated_id=refs.deprecated_id,
                created_at=now,
                updated_at=now,
            )
            .returning(Submission.id)
        ).first()
        if filled is None:
            raise VersionGone(instance_id)
        _keep_placeholders(form.id, own.root_id, own.root_instance_id, own.position, refs, known)
        return StoreResult(own.root_id, instance_id, False, (), edit_of=own.root_instance_id)
    target = next((known[c] for c in refs.candidates() if c in known), None)
    if target is None:  # a new submission (its original, if any, was never received)
        submission_id = _insert(form.id, instance_id, parsed, refs, now)
        _keep_placeholders(form.id, submission_id, instance_id, 0, refs, known)
        logs = insert_logs(form.active_hook_ids, submission_id, now)
        return StoreResult(submission_id, instance_id, True, logs)
    root_id = target.root_id if target.root_id is not None else target.id
    last = db.session.scalar(
        select(func.max(Submission.position)).where(
            or_(Submission.id == root_id, Submission.root_id == root_id)
        )
    )
    if last is None:  # the submission was deleted since it was looked up
        raise VersionGone(target.root_instance_id)
    position = last + 1
    version_id = _insert(
        form.id, instance_id, parsed, refs, now, root=(root_id, target.root_instance_id, position)
    )
    _keep_placeholders(form.id, root_id, target.root_instance_id, position, refs, known)
    logs = insert_logs(form.edit_hook_ids, version_id, now)
    return StoreResult(root_id, instance_id, False, logs, edit_of=target.root_instance_id)


def _content(parsed: ParsedSubmission) -> dict:
    return {
        "source_format": parsed.source_format,
        "content_type": parsed.content_type,
        "body": parsed.body,
        "data": parsed.data,
    }


def _insert(form_id, instance_id, parsed, refs, now, root=None) -> int:
    root_id, root_instance_id, position = root or (None, instance_id, 0)
    return db.session.scalar(
        insert(Submission)
        .values(
            form_id=form_id,
            instance_id=instance_id,
            **_content(parsed),
            created_at=now,
            updated_at=now,
            edit_count=0,
            root_id=root_id,
            root_instance_id=root_instance_id,
            deprecated_id=refs.deprecated_id,
            position=position,
            received=True,
        )
        .returning(Submission.id)
    )


def _keep_placeholders(form_id, root_id, root_instance_id, position, refs, known) -> None:
    """A row for each id the version at `position` names that the form does not know.

    The replaced id goes just before the version; the root before that.
    Plain inserts: a concurrent request that stored one of them makes this
    one fail and start again.
    """
    now = utcnow()
    for named in refs.placeholders():
        position -= 1
        if named in known or named.removeprefix("uuid:") in known:
            continue
        db.session.execute(
            insert(Submission).values(
                form_id=form_id,
                instance_id=named,
                source_format="",
                content_type="",
                body=b"",
                data={},
                created_at=now,
                updated_at=now,
                edit_count=0,
                root_id=root_id,
                root_instance_id=root_instance_id,
                position=position,
                received=False,
            )
        )


def _repost(own, instance_id: str, parsed: ParsedSubmission, now) -> StoreResult:
    """A known version posted again: another body replaces its stored data.

    Raises VersionGone if the version was deleted since it was looked up
    (the UPDATE waited for the retention job's lock, then found no row).
    """
    changed = db.session.execute(
        update(Submission)
        .where(
            Submission.id == own.id,
            func.coalesce(Submission.edited_body, Submission.body) != parsed.body,
        )
        .values(
            edited_body=parsed.body,
            edited_content_type=parsed.content_type,
            edited_data=parsed.data,
            edit_count=Submission.edit_count + 1,
            updated_at=now,
        )
        .returning(Submission.id)
    ).first()
    if changed is None:
        still_there = db.session.scalar(select(Submission.id).where(Submission.id == own.id))
        if still_there is None:
            raise VersionGone(instance_id)
    submission_id = own.root_id if own.root_id is not None else own.id
    return StoreResult(submission_id, instance_id, False)
