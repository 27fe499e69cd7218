"""One request builder: a hook's settings and a submission in, the POST to make out.

The drainer (through webapp.delivery.claims) and "Send test" in the admin
panel both build their requests here, so a test sends what a delivery sends:
the body in the hook's format, Content-Type, X-Formhooks-Delivery, the hook's
custom headers and its basic auth, and the Standard Webhooks signature of the
body (webapp.delivery.signatures), made when the attempt is sent. The
User-Agent is the sender's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from webapp.attachments.listing import with_attachments
from webapp.delivery.formats import PayloadError, build_payload
from webapp.delivery.signatures import Signer
from webapp.models.base import utcnow


@dataclass(frozen=True)
class HookSettings:
    """What sending needs of a hook, read once (secrets decrypted), then read-only.

    ``headers`` are the hook's custom headers, ``auth`` its basic auth
    (user, password) or None, ``signing_keys`` the HMAC keys of its signing
    secrets that sign now (never shown). ``problem`` says why nothing can be
    sent (see ``of``).
    """

    id: int
    active: bool
    endpoint: str
    export_type: str
    subset_fields: tuple[str, ...]
    payload_template: str | None
    headers: Mapping[str, str]
    auth: tuple[str, str] | None
    form_uid: str
    signing_keys: tuple[bytes, ...] = field(default=(), repr=False)
    problem: str | None = None

    @classmethod
    def of(cls, hook: Any, form_uid: str, now: datetime | None = None) -> HookSettings:
        """The settings of ``hook`` (a models.Hook) of the form ``form_uid``, at ``now``.

        A hook with a secret that no configured key decrypts (ENCRYPTION_KEY
        changed without keeping the old key) gets settings with a ``problem``:
        its sends fail with that message, and are retried; other hooks send.
        """
        try:
            return cls(
                id=hook.id,
                active=hook.active,
                endpoint=hook.endpoint,
                export_type=hook.export_type,
                subset_fields=tuple(hook.subset_fields or ()),
                payload_template=hook.payload_template,
                headers=MappingProxyType(dict(hook.custom_headers)),
                auth=hook.basic_auth,
                form_uid=form_uid,
                signing_keys=hook.signing_keys(now or utcnow()),
            )
        except ValueError as exc:
            return cls(
                id=hook.id,
                active=hook.active,
                endpoint=hook.endpoint,
                export_type=hook.export_type,
                subset_fields=(),
                payload_template=None,
                headers=MappingProxyType({}),
                auth=None,
                form_uid=form_uid,
                problem=str(exc),
            )


@dataclass(frozen=True)
class OutboundRequest:
    """One POST to make: ``headers`` are Formhooks' own, ``hook_headers`` the hook's.

    The sender sends the hook's headers and auth over Formhooks' own, and
    drops them (and only them) when a redirect leads to another origin.
    ``signer`` adds the signature headers, as of the moment of sending
    (``wire_headers``).
    """

    url: str
    body: bytes
    headers: Mapping[str, str]
    hook_headers: Mapping[str, str]
    auth: tuple[str, str] | None
    signer: Signer | None = None

    def wire_headers(self) -> Mapping[str, str]:
        """Formhooks' own headers for an attempt made now: signed now, over ``body``."""
        if self.signer is None:
            return self.headers
        return {**self.headers, **self.signer.headers(self.body)}


class PayloadSettings(Protocol):
    """What building a body needs of a hook (a HookSettings, a Hook, an edit form)."""

    export_type: str
    subset_fields: Sequence[str] | None
    payload_template: str | None


def build_body(
    settings: PayloadSettings,
    form_uid: str,
    *,
    content_type: str,
    body: bytes,
    data: Any,
    files: list[dict[str, Any]] | None = None,
) -> tuple[bytes, str]:
    """(body, Content-Type) for one submission, as stored (``content_type`` is
    the submission's own); raises formats.PayloadError.

    ``files`` are the version's attachment entries (attachments.listing.files_of):
    a JSON payload lists them in ``_attachments`` (docs/attachments.md).
    """
    if settings.export_type == "json":
        data = with_attachments(data, files)
    return build_payload(
        content_type=content_type,
        body=body,
        data=data,
        form_uid=form_uid,
        export_type=settings.export_type,
        subset_fields=list(settings.subset_fields or ()),
        payload_template=settings.payload_template,
    )


def build_request(
    hook: HookSettings,
    *,
    content_type: str,
    body: bytes,
    data: Any,
    delivery_id: str,
    test: bool = False,
    extra_headers: Mapping[str, str] | None = None,
    files: list[dict[str, Any]] | None = None,
) -> OutboundRequest:
    """The POST for one submission (as stored) to ``hook``; raises formats.PayloadError.

    ``delivery_id`` goes in X-Formhooks-Delivery and webhook-id (the log's
    uid); the body is signed with the hook's keys when it is sent; ``test``
    adds X-Formhooks-Test: true; ``extra_headers`` are more of Formhooks' own
    (their names must be in headers.RESERVED, so no hook can forge them);
    ``files`` as for :func:`build_body`.
    """
    if hook.problem is not None:
        raise PayloadError(hook.problem, permanent=False)
    payload, payload_type = build_body(
        hook, hook.form_uid, content_type=content_type, body=body, data=data, files=files
    )
    headers = {"Content-Type": payload_type, "X-Formhooks-Delivery": delivery_id}
    if test:
        headers["X-Formhooks-Test"] = "true"
    headers.update(extra_headers or {})
    signer = Signer(delivery_id, hook.signing_keys) if hook.signing_keys else None
    return OutboundRequest(hook.endpoint, payload, headers, hook.headers, hook.auth, signer)
