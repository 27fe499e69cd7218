"""Storing a submission with its pending delivery logs: the webhook's hot path.

On PostgreSQL one statement, committed on its own (autocommit), checks the
form and its token digest, inserts the submission and one pending log per
active hook: one round trip and one WAL flush per request, and concurrent
requests share their flushes (gunicorn threads). On SQLite (one machine,
no round trips) Core statements in one transaction do the same.

Either way the rows are committed before the logs go to the delivery feed,
so a worker never looks for a row that is not there yet; if Redis cannot be
reached, the logs stay due and the sweeper sends them. An edit (a known
instance id) updates the stored data and sends nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from enum import Enum

from flask import current_app
from sqlalchemy import and_, create_engine, event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from webapp.crypto import token_digest, token_matches
from webapp.delivery import feed
from webapp.extensions import db
from webapp.ingest.parsing import ParsedSubmission
from webapp.models import DeliveryLog, Form, Hook, Submission
from webapp.models.base import new_uid, utcnow


class Refusal(Enum):
    NO_FORM = "no form"
    BAD_TOKEN = "bad token"  # noqa: S105 (a reason, not a secret)


@dataclass(frozen=True)
class IngestForm:
    """What the webhook needs of a form."""

    id: int
    token_hash: str
    active_hook_ids: tuple[int, ...]

    def check_token(self, candidate: str) -> bool:
        return token_matches(candidate, self.token_hash)


@dataclass(frozen=True)
class StoreResult:
    submission_id: int
    instance_id: str
    created: bool
    log_ids: tuple[int, ...] = ()  # the pending logs created (none for an edit)

    @property
    def deliveries(self) -> int:
        return len(self.log_ids)


def find_form(form_uid: str) -> IngestForm | None:
    """The form with `form_uid` and its active hooks, in one query."""
    rows = db.session.execute(
        select(Form.id, Form.ingest_token_hash, Hook.id)
        .outerjoin(Hook, and_(Hook.form_id == Form.id, Hook.active.is_(True)))
        .where(Form.uid == form_uid)
        .order_by(Hook.id)
    ).all()
    if not rows:
        return None
    hook_ids = tuple(row[2] for row in rows if row[2] is not None)
    return IngestForm(rows[0][0], rows[0][1], hook_ids)


def check_form(form_uid: str, token: str | None) -> Refusal | None:
    """Why a request to `form_uid` with `token` is refused, if it is."""
    form = find_form(form_uid)
    if form is None:
        return Refusal.NO_FORM
    if token is None or not form.check_token(token):
        return Refusal.BAD_TOKEN
    return None


def receive(
    form_uid: str, token: str, instance_id: str, parsed: ParsedSubmission, *, send: bool = True
):
    """Store a submission for `form_uid` if `token` is its ingest token.

    Returns a StoreResult, or a Refusal (nothing stored). Database errors
    propagate (the view answers 503). `send=False` stores without delivery
    logs (a source's backfill, docs/central.md).
    """
    if db.engine.dialect.name == "postgresql":
        result = _receive_postgresql(form_uid, token, instance_id, parsed, send)
    else:
        result = _receive_portable(form_uid, token, instance_id, parsed, send)
    if isinstance(result, StoreResult) and result.created:
        feed.push(result.log_ids)
    return result


# --- PostgreSQL: one statement --------------------------------------------------------------

# A delivery log uid made by PostgreSQL: "hl" + 20 characters of base64 from
# gen_random_uuid() (a CSPRNG), in the alphabet of new_uid().
LOG_UID_SQL = (
    "'hl' || left(translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/', 'Qz'), 20)"
)

# The token is compared as its SHA-256 digest (a lookup by digest: timing
# reveals nothing usable about the token).
_RECEIVE_SQL = f"""
WITH f AS (
    SELECT id, ingest_token_hash = %(digest)s AS token_ok FROM forms WHERE uid = %(form_uid)s
), s AS (
    INSERT INTO submissions (form_id, instance_id, source_format, content_type, body, data,
                             created_at, updated_at, edit_count)
    SELECT id, %(instance_id)s, %(source_format)s, %(content_type)s, %(body)s, %(data)s::json,
           %(now)s, %(now)s, 0
    FROM f WHERE token_ok
    ON CONFLICT ON CONSTRAINT uq_submissions_form_instance DO NOTHING
    RETURNING id, form_id
), l AS (
    INSERT INTO delivery_logs (uid, hook_id, submission_id, status, tries, message,
                               date_created, date_modified, next_retry_at)
    SELECT {LOG_UID_SQL},
           h.id, s.id, 'pending', 0, '', %(now)s, %(now)s, %(now)s
    FROM s JOIN hooks h ON h.form_id = s.form_id AND h.active AND %(send)s
    ORDER BY h.id
    RETURNING id
)
SELECT (SELECT token_ok FROM f), (SELECT id FROM s), ARRAY(SELECT id FROM l ORDER BY id)
"""  # noqa: S608 - LOG_UID_SQL is a constant, not input

_EDIT_SQL = """
UPDATE submissions
SET edited_body = %(body)s, edited_content_type = %(content_type)s,
    edited_data = %(data)s::json, edit_count = edit_count + 1, updated_at = %(now)s
WHERE form_id = (SELECT id FROM forms WHERE uid = %(form_uid)s) AND instance_id = %(instance_id)s
RETURNING id
"""


_ENGINE_LOCK = threading.Lock()


def ingest_engine() -> Engine:
    """An engine of autocommit connections for the webhook, one per app and process.

    No pre-ping: a broken connection fails the statement, which is retried
    once on a fresh pool (safe: an insert that did commit is then an edit of
    the same submission, which sends nothing). Disposing of the app's main
    engine (tests, forks) disposes of this one too.
    """
    engine = current_app.extensions.get("formhooks.ingest_engine")
    if engine is not None:
        return engine
    with _ENGINE_LOCK:
        engine = current_app.extensions.get("formhooks.ingest_engine")
        if engine is None:
            main = db.engine
            engine = create_engine(
                main.url,
                isolation_level="AUTOCOMMIT",
                pool_pre_ping=False,
                pool_size=8,
                max_overflow=8,
            )
            event.listen(main, "engine_disposed", lambda _main: engine.dispose())
            current_app.extensions["formhooks.ingest_engine"] = engine
    return engine


def _receive_postgresql(form_uid, token, instance_id, parsed, send=True):
    import psycopg

    params = {
        "send": send,
        "form_uid": form_uid,
        "digest": token_digest(token),
        "instance_id": instance_id,
        "source_format": parsed.source_format,
        "content_type": parsed.content_type,
        "body": parsed.body,
        "data": json.dumps(parsed.data),
        "now": utcnow(),
    }
    engine = ingest_engine()
    for attempt in (1, 2):
        connection = engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(_RECEIVE_SQL, params)
                token_ok, submission_id, log_ids = cursor.fetchone()
                if token_ok is None:
                    return Refusal.NO_FORM
                if not token_ok:
                    return Refusal.BAD_TOKEN
                if submission_id is not None:
                    return StoreResult(submission_id, instance_id, True, tuple(log_ids))
                cursor.execute(_EDIT_SQL, params)
                row = cursor.fetchone()
                if row is not None:
                    return StoreResult(row[0], instance_id, False)
                # The submission was deleted between the two statements: store it anew.
        except psycopg.OperationalError:
            # A stale connection (the database restarted): drop the pool, try once more.
            connection.invalidate()
            engine.dispose()
            if attempt == 2:
                raise
        finally:
            connection.close()
    raise RuntimeError("the submission was deleted twice while being received")


# --- SQLite (and any other database): Core statements in one transaction ------------------


def _receive_portable(form_uid, token, instance_id, parsed, send=True):
    form = find_form(form_uid)
    if form is None:
        return Refusal.NO_FORM
    if not form.check_token(token):
        return Refusal.BAD_TOKEN
    now = utcnow()
    try:
        submission_id = db.session.scalar(
            insert(Submission)
            .values(
                form_id=form.id,
                instance_id=instance_id,
                source_format=parsed.source_format,
                content_type=parsed.content_type,
                body=parsed.body,
                data=parsed.data,
                created_at=now,
                updated_at=now,
                edit_count=0,
            )
            .returning(Submission.id)
        )
    except IntegrityError:
        db.session.rollback()
        return _record_edit(form, instance_id, parsed)
    log_ids: list[int] = []
    if form.active_hook_ids and send:
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
            for hook_id in form.active_hook_ids
        ]
        log_ids = list(db.session.scalars(insert(DeliveryLog).returning(DeliveryLog.id), rows))
    db.session.commit()
    return StoreResult(submission_id, instance_id, True, tuple(log_ids))


def _record_edit(form: IngestForm, instance_id: str, parsed: ParsedSubmission) -> StoreResult:
    submission_id = db.session.scalar(
        update(Submission)
        .where(Submission.form_id == form.id, Submission.instance_id == instance_id)
        .values(
            edited_body=parsed.body,
            edited_content_type=parsed.content_type,
            edited_data=parsed.data,
            edit_count=Submission.edit_count + 1,
            updated_at=utcnow(),
        )
        .returning(Submission.id)
    )
    db.session.commit()
    return StoreResult(submission_id, instance_id, False)
