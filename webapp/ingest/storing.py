"""Storing a submission with its pending delivery logs: the webhook's hot path.

On PostgreSQL one statement, committed on its own (autocommit), checks the
form and its token digest, inserts the submission and one pending log per
active hook: one round trip and one WAL flush per request, and concurrent
requests share their flushes (gunicorn threads). On SQLite (one machine,
no round trips) Core statements in one transaction do the same.

Either way the rows are committed before the logs go to the delivery feed,
so a worker never looks for a row that is not there yet; if Redis cannot be
reached, the logs stay due and the sweeper sends them. A post that names
an earlier instance (an edit) or whose instance id is stored already goes
to webapp.ingest.versions.
"""

from __future__ import annotations

import json
import threading

from flask import current_app
from sqlalchemy import create_engine, event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from webapp.attachments.store import attach
from webapp.crypto import token_digest
from webapp.delivery import feed
from webapp.extensions import db
from webapp.ingest.identity import EditRefs
from webapp.ingest.lookup import Refusal, StoreResult, check_form, find_form
from webapp.ingest.parsing import ParsedSubmission
from webapp.ingest.versions import insert_logs, receive_version
from webapp.models import Submission
from webapp.models.base import utcnow

__all__ = ["LOG_UID_SQL", "Refusal", "StoreResult", "check_form", "find_form", "receive"]


def receive(
    form_uid: str,
    token: str,
    instance_id: str,
    parsed: ParsedSubmission,
    refs: EditRefs | None = None,
    *,
    send: bool = True,
):
    """Store a submission for `form_uid` if `token` is its ingest token.

    `refs` are the earlier instances the post names (an edit). Returns a
    StoreResult, or a Refusal (nothing stored). Database errors propagate
    (the view answers 503). `send=False` stores without delivery logs,
    for a new submission and an edit alike (a source's backfill,
    docs/central.md).
    """
    refs = refs or EditRefs()
    if refs:
        result = _receive_linked(form_uid, token, instance_id, parsed, refs, send)
    elif db.engine.dialect.name == "postgresql" and not (parsed.files or parsed.incomplete):
        result = _receive_postgresql(form_uid, token, instance_id, parsed, send)
    else:
        result = _receive_portable(form_uid, token, instance_id, parsed, send)
    if isinstance(result, StoreResult) and result.log_ids and not parsed.incomplete:
        feed.push(result.log_ids)
    return result


def _receive_linked(form_uid, token, instance_id, parsed, refs, send):
    form = find_form(form_uid)
    if form is None:
        return Refusal.NO_FORM
    if not form.check_token(token):
        return Refusal.BAD_TOKEN
    return receive_version(form, instance_id, parsed, refs, send=send)


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
                             created_at, updated_at, edit_count, root_instance_id)
    SELECT id, %(instance_id)s, %(source_format)s, %(content_type)s, %(body)s, %(data)s::json,
           %(now)s, %(now)s, 0, %(instance_id)s
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

# A re-post of a received version: another body replaces its stored data, the
# same body changes nothing. No row: the id is a placeholder, or was deleted
# (before this statement, or by the retention job while the UPDATE waited
# for its lock: then `u` changed nothing).
_REPOST_SQL = """
WITH t AS (
    SELECT id, coalesce(root_id, id) AS submission_id, coalesce(edited_body, body) = %(body)s
           AS same
    FROM submissions
    WHERE form_id = (SELECT id FROM forms WHERE uid = %(form_uid)s)
      AND instance_id = %(instance_id)s AND received
), u AS (
    UPDATE submissions s
    SET edited_body = %(body)s, edited_content_type = %(content_type)s,
        edited_data = %(data)s::json, edit_count = s.edit_count + 1, updated_at = %(now)s
    FROM t WHERE s.id = t.id AND NOT t.same
    RETURNING s.id
)
SELECT submission_id FROM t WHERE t.same OR EXISTS (SELECT 1 FROM u)
"""


_ENGINE_LOCK = threading.Lock()


def _setting(name: str, default: int) -> int:
    """A pool size from the config, or this pool's own default when it is unset."""
    value = current_app.config.get(name)
    return default if value is None else value


def ingest_engine() -> Engine:
    """An engine of autocommit connections for the webhook, one per app and process.

    No pre-ping: a broken connection fails the statement, which is retried
    once on a fresh pool (safe: an insert that did commit is then an edit of
    the same submission, which sends nothing). Disposing of the app's main
    engine (tests, forks) disposes of this one too. Its pool keeps 8
    connections and opens 8 more in bursts, unless DATABASE_POOL_SIZE and
    DATABASE_MAX_OVERFLOW say otherwise.
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
                pool_size=_setting("DATABASE_POOL_SIZE", 8),
                max_overflow=_setting("DATABASE_MAX_OVERFLOW", 8),
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
                cursor.execute(_REPOST_SQL, params)
                row = cursor.fetchone()
                if row is not None:
                    return StoreResult(row[0], instance_id, False)
                # A placeholder (this original arrived after its edit), or a
                # submission deleted meanwhile: the versions' path does both.
                break
        except psycopg.OperationalError:
            # A stale connection (the database restarted): drop the pool, try once more.
            connection.invalidate()
            engine.dispose()
            if attempt == 2:
                raise
        finally:
            connection.close()
    form = find_form(form_uid)
    if form is None:
        return Refusal.NO_FORM
    return receive_version(form, instance_id, parsed, EditRefs(), send=send)


# --- SQLite (and any other database, and posts with files): Core statements in one
# transaction ---------------------------------------------------------------------------------


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
                root_instance_id=instance_id,
            )
            .returning(Submission.id)
        )
    except IntegrityError:
        # A known instance id: a re-post, or an original whose edit came first.
        db.session.rollback()
        return receive_version(form, instance_id, parsed, EditRefs(), send=send)
    log_ids = insert_logs(form.active_hook_ids if send else (), submission_id, now)
    attach(submission_id, parsed)  # its files, in the same transaction
    db.session.commit()
    return StoreResult(submission_id, instance_id, True, log_ids)
