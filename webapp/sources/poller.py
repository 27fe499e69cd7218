"""One poll of an ODK Central source: read what is new, store it, move the cursors.

Two passes over Central's OData submission list, each ordered and paged by
a cursor (a Central time, to the millisecond):

1. New submissions: `__system/submissionDate ge created_cursor`, oldest first.
2. Edits: `__system/updatedAt ge updated_cursor` (for submissions made since
   the source's start), oldest change first. A row whose `edits` count is 0
   changed only its review state: nothing is fetched or stored.

A submission never edited is fetched as `{id}.xml`; an edited one version by
version (oldest first), so each version enters as Central received it and
names the one it replaces (meta/deprecatedID). A version whose instance id
the form has already is skipped, so reading a row again stores nothing:
the cursors use `ge`, and never move past Central's clock minus SETTLE, so
a submission whose transaction committed late is still read. Whatever is
stored goes through webapp.sources.entry, as a webhook post would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.ingest.parsing import IngestError
from webapp.ingest.storing import Refusal
from webapp.models import Form, Source
from webapp.models.base import secret_box, utcnow
from webapp.sources import cursor
from webapp.sources.client import CentralClient, CentralError, odata_time, parse_time
from webapp.sources.entry import known_instance_ids, store_instance

log = logging.getLogger(__name__)

PAGE_SIZE = 100
SETTLE = timedelta(seconds=30)
# One poll job stops after this long and queues the next (a long backfill
# goes on in several jobs; each page's progress is saved as it goes).
BUDGET_SECONDS = 300.0

#: Called after each stored submission with the number stored in this poll.
#: A test seam for "the worker dies here"; None in production.
AFTER_STORE: Callable[[int], None] | None = None


class FormGone(Exception):  # noqa: N818
    """The form was deleted during the poll."""


@dataclass(frozen=True)
class Snapshot:
    """What one poll needs of its source, read once when the lease is taken."""

    id: int
    form_id: int
    form_uid: str
    ingest_token: str
    url: str
    project_id: int
    xml_form_id: str
    email: str
    password: str
    session_token: str | None
    start: datetime
    connected_at: datetime
    send_backfill: bool
    created_cursor: datetime
    updated_cursor: datetime
    fingerprint: tuple


@dataclass
class PollResult:
    stored: int = 0
    more: bool = False  # out of budget: another poll job was queued
    error: CentralError | None = None


def snapshot(source: Source, form: Form, now: datetime) -> Snapshot:
    token = None
    expires = source.session_expires_at
    if source.session_token_encrypted and expires is not None and expires > now:
        token = secret_box().decrypt(source.session_token_encrypted)
    return Snapshot(
        id=source.id,
        form_id=form.id,
        form_uid=form.uid,
        ingest_token=form.ingest_token,
        url=source.url,
        project_id=source.project_id,
        xml_form_id=source.xml_form_id,
        email=source.email,
        password=source.password,
        session_token=token,
        start=source.start,
        connected_at=source.connected_at,
        send_backfill=source.send_backfill,
        created_cursor=source.created_cursor or source.start,
        updated_cursor=source.updated_cursor or source.start,
        fingerprint=cursor.settings_fingerprint(source),
    )


def poll_source(source_id: int, now: datetime | None = None) -> PollResult | None:
    """Poll one source if it is due and nobody else is polling it. None when not claimed."""
    now = now or utcnow()
    interval = current_app.config["CENTRAL_POLL_INTERVAL"]
    owner = cursor.claim(source_id, now, tolerance=timedelta(seconds=interval / 2))
    if owner is None:
        return None
    row = db.session.execute(
        select(Source, Form).join(Form, Form.id == Source.form_id).where(Source.id == source_id)
    ).first()
    if row is None:
        return None
    state = snapshot(row[0], row[1], now)
    db.session.rollback()
    result = PollResult()
    try:
        with CentralClient(
            state.url,
            state.email,
            state.password,
            allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"],
            token=state.session_token,
            max_bytes=current_app.config["MAX_SUBMISSION_BYTES"],
        ) as client:
            run = _Run(client, state, owner, result)
            try:
                run.all()
            finally:
                if client.token_renewed:
                    cursor.cache_token(source_id, owner, client.token, now)
    except CentralError as exc:
        result.error = exc
        log.info("Central source %s: %s (%s)", source_id, exc.message, exc.code)
        cursor.finish_error(
            source_id,
            owner,
            code=exc.code,
            message=exc.message,
            now=utcnow(),
            interval=interval,
            fingerprint=state.fingerprint,
        )
        return result
    except cursor.LeaseLost as exc:
        log.info("Central source %s: poll stopped: %s", source_id, exc)
        db.session.rollback()
        return result
    except FormGone as exc:
        log.info("Central source %s: poll stopped: %s", source_id, exc)
        cursor.release(source_id, owner, utcnow())
        return result
    except Exception:
        log.exception("Central source %s: poll failed", source_id)
        cursor.release(source_id, owner, utcnow() + timedelta(seconds=interval))
        raise
    finished = utcnow()
    due = finished if result.more else now + timedelta(seconds=interval)
    cursor.finish_ok(source_id, owner, polled_at=finished, next_poll_at=due, note=run.note)
    return result


class _Run:
    """The two passes of one poll, with the lease kept and the cursors moved."""

    def __init__(self, client: CentralClient, state: Snapshot, owner: str, result: PollResult):
        self.client = client
        self.state = state
        self.owner = owner
        self.result = result
        self.deadline = time.monotonic() + BUDGET_SECONDS
        self.note: tuple[str, str] | None = None

    def all(self) -> None:
        self._pass(
            "__system/submissionDate",
            self.state.created_cursor,
            "created_cursor",
            extra="",
        )
        if not self.result.more:
            start = odata_time(self.state.start)
            self._pass(
                "__system/updatedAt",
                self.state.updated_cursor,
                "updated_cursor",
                extra=f" and __system/submissionDate ge {start}",
            )

    def _pass(self, field: str, since: datetime, column: str, *, extra: str) -> None:
        saved, query_at, skip = since, since, 0
        edits_only = column == "updated_cursor"
        while True:
            page = self.client.submissions_page(
                self.state.project_id,
                self.state.xml_form_id,
                filter_=f"{field} ge {odata_time(query_at)}{extra}",
                orderby=f"{field} asc",
                top=PAGE_SIZE,
                skip=skip,
            )
            if not page.rows:
                return
            self._store_page(page.rows, edits_only)
            times = [_row_time(row, field) for row in page.rows]
            last = times[-1]
            skip = skip + len(times) if last == query_at else times.count(last)
            query_at = last
            settled = min(last, page.server_time - SETTLE) if page.server_time else last
            if settled > saved:
                saved = settled
                cursor.move(self.state.id, self.owner, **{column: saved})
            if len(page.rows) < PAGE_SIZE:
                return
            if time.monotonic() > self.deadline:
                self.result.more = True
                return

    def _store_page(self, rows: list[dict], edits_only: bool) -> None:
        plain = [row["__id"] for row in rows if not _edits(row)]
        known = known_instance_ids(self.state.form_id, plain)
        for row in rows:
            root = row["__id"]
            if _edits(row):
                self._store_versions(root)
            elif not edits_only and root not in known:
                made = parse_time(row["__system"]["submissionDate"])
                self._store(root, None, made)

    def _store_versions(self, root: str) -> None:
        versions = self.client.versions(self.state.project_id, self.state.xml_form_id, root)
        ids = [v["instanceId"] for v in versions]
        known = known_instance_ids(self.state.form_id, ids)
        for version in versions:
            if version["instanceId"] not in known:
                made = parse_time(version["createdAt"])
                self._store(root, version["instanceId"], made)

    def _store(self, root: str, version: str | None, made: datetime) -> None:
        body = self.client.instance_xml(
            self.state.project_id, self.state.xml_form_id, root, version
        )
        send = self.state.send_backfill or made >= self.state.connected_at
        try:
            result = store_instance(
                self.state.form_uid, self.state.ingest_token, body, {}, send=send
            )
        except IngestError as exc:
            which = version or root
            self.note = ("submission", f"Central submission {which} was not stored: {exc.message}")
            log.warning("Central source %s: %s", self.state.id, self.note[1])
            return
        if isinstance(result, Refusal):
            raise FormGone(result.value)
        self.result.stored += 1
        cursor.renew(self.state.id, self.owner, received=1)
        if AFTER_STORE is not None:
            AFTER_STORE(self.result.stored)


def _edits(row: dict) -> int:
    return int((row.get("__system") or {}).get("edits") or 0)


def _row_time(row: dict, field: str) -> datetime:
    return parse_time(row["__system"][field.split("/", 1)[1]])
