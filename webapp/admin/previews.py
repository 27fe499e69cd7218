"""The body a hook would send, and "Send test": one real POST, no log, no retry."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from flask_babel import gettext as _
from requests.structures import CaseInsensitiveDict

from webapp.delivery.engine import get_sender
from webapp.delivery.formats import JSON_CONTENT_TYPE, PayloadError, build_payload
from webapp.delivery.http import DeliveryError
from webapp.models import Form, Hook, Submission
from webapp.models.base import utcnow

#: The most of a body shown on a page.
SHOWN_BYTES = 200_000
#: The most of a test's response excerpt kept in the flash message.
TEST_EXCERPT = 600


class PayloadSettings(Protocol):
    export_type: str
    subset_fields: list[str]
    payload_template: str | None


@dataclass(frozen=True)
class Preview:
    """A body as it would be sent, or why it cannot be built."""

    body: str | None
    content_type: str | None
    error: str | None = None
    truncated: bool = False


def build_for(settings: PayloadSettings, form: Form, submission: Submission) -> tuple[bytes, str]:
    """(body, content type) as the engine builds them: the submission as created."""
    return build_payload(
        content_type=submission.content_type,
        body=submission.body,
        data=submission.data,
        form_uid=form.uid,
        export_type=settings.export_type,
        subset_fields=list(settings.subset_fields or []),
        payload_template=settings.payload_template,
    )


def preview(settings: PayloadSettings, form: Form, submission: Submission) -> Preview:
    """The exact body for `submission`, decoded for display."""
    try:
        body, content_type = build_for(settings, form, submission)
    except PayloadError as exc:
        return Preview(None, None, str(exc))
    shown = body[:SHOWN_BYTES].decode("utf-8", errors="replace")
    return Preview(shown, content_type, truncated=len(body) > SHOWN_BYTES)


def _sample_body(settings: PayloadSettings, form: Form) -> tuple[bytes, str]:
    """A small made-up submission, for a form that has received none yet."""
    data: dict[str, Any] = {
        "formhooks_test": True,
        "sent_at": utcnow().isoformat(timespec="seconds"),
        "meta": {"instanceID": "uuid:formhooks-test"},
    }
    return build_payload(
        content_type=JSON_CONTENT_TYPE,
        body=json.dumps(data).encode(),
        data=data,
        form_uid=form.uid,
        export_type=settings.export_type,
        subset_fields=list(settings.subset_fields or []),
        payload_template=settings.payload_template,
    )


@dataclass(frozen=True)
class TestResult:
    ok: bool
    summary: str
    excerpt: str = ""


def send_test(hook: Hook, form: Form, submission: Submission | None) -> TestResult:
    """POST the hook's body once, through the SSRF-guarded sender. Nothing is recorded."""
    try:
        if submission is not None:
            body, content_type = build_for(hook, form, submission)
        else:
            body, content_type = _sample_body(hook, form)
    except PayloadError as exc:
        return TestResult(False, _("The body could not be built: %(error)s", error=str(exc)))
    headers = CaseInsensitiveDict({"Content-Type": content_type})
    headers.update(hook.custom_headers)
    headers["X-Formhooks-Delivery"] = "test-" + secrets.token_hex(8)
    headers["X-Formhooks-Test"] = "true"
    try:
        result = get_sender().post(hook.endpoint, body, headers=headers, auth=hook.basic_auth)
    except DeliveryError as exc:
        return TestResult(False, _("The test could not be delivered: %(error)s", error=exc.message))
    excerpt = result.excerpt[:TEST_EXCERPT]
    summary = _(
        "The endpoint answered HTTP %(status)d in %(ms)d ms.",
        status=result.status_code,
        ms=round(result.duration * 1000),
    )
    return TestResult(result.ok, summary, excerpt)
