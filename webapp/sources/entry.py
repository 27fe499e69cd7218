"""The one door from a source into ingest: an XML body stored as if POSTed to the webhook.

Everything a source fetches goes through `store_instance`, which calls the
same functions the webhook view calls for an `application/xml` body
(webapp.ingest.parsing, then webapp.ingest.storing.receive) with the form's
own ingest token: same parsing, same instance ids, same hooks, same edit
rules. Only this function knows how ingest is entered.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from webapp.extensions import db
from webapp.ingest import storing
from webapp.ingest.identity import DEPRECATED_HEADER, edit_refs_of
from webapp.ingest.parsing import instance_id_of, media_kind, parse_body
from webapp.ingest.storing import Refusal, StoreResult
from webapp.models import Submission

XML = "application/xml"


def store_instance(
    form_uid: str, token: str, body: bytes, headers: Mapping[str, str], *, send: bool
) -> StoreResult | Refusal:
    """Store `body` (an XForm instance) for the form, as the webhook would.

    `headers` are the ones a client would have sent with it (none today: the
    instance itself names what it replaces, meta/deprecatedID, so a Central
    edit is stored as an edit by ingest's own rules). `send=False` stores
    without sending, an edit included (a backfill). Raises IngestError when
    the body is refused, as the webhook answers 400.
    """
    parsed = parse_body(media_kind(XML), XML, body)
    instance_id = instance_id_of(parsed.data, headers.get("Idempotency-Key"))
    refs = edit_refs_of(parsed.data, instance_id, headers.get(DEPRECATED_HEADER))
    return storing.receive(form_uid, token, instance_id, parsed, refs, send=send)


def known_instance_ids(form_id: int, instance_ids: list[str]) -> set[str]:
    """Which of `instance_ids` the form has received already (so they are not stored twice).

    Only received versions count: a placeholder row (an id an edit named
    before it arrived) is still to be fetched.
    """
    if not instance_ids:
        return set()
    found = db.session.scalars(
        select(Submission.instance_id).where(
            Submission.form_id == form_id,
            Submission.instance_id.in_(instance_ids),
            Submission.received.is_(True),
        )
    )
    return set(found)
