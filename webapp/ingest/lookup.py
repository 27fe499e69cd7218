"""What the webhook reads of a form, and what storing a submission answers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sqlalchemy import and_, select

from webapp.crypto import token_matches
from webapp.extensions import db
from webapp.models import Form, Hook


class Refusal(Enum):
    NO_FORM = "no form"
    BAD_TOKEN = "bad token"  # noqa: S105 (a reason, not a secret)


@dataclass(frozen=True)
class IngestForm:
    """What the webhook needs of a form: its token digest and active hooks."""

    id: int
    token_hash: str
    active_hook_ids: tuple[int, ...]
    edit_hook_ids: tuple[int, ...] = ()  # the active hooks with send_edits on

    def check_token(self, candidate: str) -> bool:
        return token_matches(candidate, self.token_hash)


@dataclass(frozen=True)
class StoreResult:
    """What was stored: `submission_id` is the submission's (its first version's) id.

    `edit_of` is the submission's root instance id when the post was stored
    as a version of a known submission (an edit, or an original that
    arrived after its edit); `log_ids` are the pending logs created.
    """

    submission_id: int
    instance_id: str
    created: bool
    log_ids: tuple[int, ...] = ()
    edit_of: str | None = None

    @property
    def deliveries(self) -> int:
        return len(self.log_ids)


def find_form(form_uid: str) -> IngestForm | None:
    """The form with `form_uid` and its active hooks, in one query."""
    rows = db.session.execute(
        select(Form.id, Form.ingest_token_hash, Hook.id, Hook.send_edits)
        .outerjoin(Hook, and_(Hook.form_id == Form.id, Hook.active.is_(True)))
        .where(Form.uid == form_uid)
        .order_by(Hook.id)
    ).all()
    if not rows:
        return None
    hook_ids = tuple(row[2] for row in rows if row[2] is not None)
    edit_hook_ids = tuple(row[2] for row in rows if row[2] is not None and row[3])
    return IngestForm(rows[0][0], rows[0][1], hook_ids, edit_hook_ids)


def check_form(form_uid: str, token: str | None) -> Refusal | None:
    """Why a request to `form_uid` with `token` is refused, if it is."""
    form = find_form(form_uid)
    if form is None:
        return Refusal.NO_FORM
    if token is None or not form.check_token(token):
        return Refusal.BAD_TOKEN
    return None
