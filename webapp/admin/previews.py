"""The body a hook would send, and "Send test": one real POST, no log, no retry."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from webapp.attachments.listing import files_of
from webapp.delivery.formats import JSON_CONTENT_TYPE, PayloadError
from webapp.delivery.request import HookSettings, PayloadSettings, build_body, build_request
from webapp.delivery.results import DeliveryError
from webapp.delivery.sender import get_sender
from webapp.models import Form, Hook, Submission
from webapp.models.base import utcnow
from webapp.models.submissions import event_headers

#: The most of a body shown on a page.
SHOWN_BYTES = 200_000
#: The most of a test's response excerpt kept in the flash message.
TEST_EXCERPT = 600
SAMPLE_INSTANCE_ID = "uuid:formhooks-test"


@dataclass(frozen=True)
class Preview:
    """A body as it would be sent, or why it cannot be built."""

    body: str | None
    content_type: str | None
    error: str | None = None
    truncated: bool = False


def build_for(settings: PayloadSettings, form: Form, submission: Submission) -> tuple[bytes, str]:
    """(body, content type) as the engine builds them: the submission as created."""
    return build_body(
        settings,
        form.uid,
        content_type=submission.content_type,
        body=submission.body,
        data=submission.data,
        files=files_of([submission.id]).get(submission.id),
    )


def preview(settings: PayloadSettings, form: Form, submission: Submission) -> Preview:
    """The exact body for `submission`, decoded for display."""
    try:
        body, content_type = build_for(settings, form, submission)
    except PayloadError as exc:
        return Preview(None, None, str(exc))
    shown = body[:SHOWN_BYTES].decode("utf-8", errors="replace")
    return Preview(shown, content_type, truncated=len(body) > SHOWN_BYTES)


def _sample_submission() -> dict[str, Any]:
    """A small made-up submission, for a form that has received none yet."""
    data: dict[str, Any] = {
        "formhooks_test": True,
        "sent_at": utcnow().isoformat(timespec="seconds"),
        "meta": {"instanceID": SAMPLE_INSTANCE_ID},
    }
    return {"content_type": JSON_CONTENT_TYPE, "body": json.dumps(data).encode(), "data": data}


@dataclass(frozen=True)
class TestResult:
    ok: bool
    summary: str
    excerpt: str = ""


def send_test(hook: Hook, form: Form, submission: Submission | None) -> TestResult:
    """POST the hook's request once, built and sent as a delivery is. Nothing is recorded.

    The request is the engine's (webapp.delivery.request), with a test delivery
    id, X-Formhooks-Test: true, and the event headers of the version sent (the
    made-up sample is a creation).
    """
    if submission is not None:
        stored = {
            "content_type": submission.content_type,
            "body": submission.body,
            "data": submission.data,
            "files": files_of([submission.id]).get(submission.id),
        }
        event = event_headers(submission.root_id, submission.root_instance_id)
    else:
        stored = _sample_submission()
        event = event_headers(None, SAMPLE_INSTANCE_ID)
    try:
        request = build_request(
            HookSettings.of(hook, form.uid),
            **stored,
            delivery_id="test-" + secrets.token_hex(8),
            test=True,
            extra_headers=event,
        )
    except PayloadError as exc:
        return TestResult(False, _("The body could not be built: %(error)s", error=str(exc)))
    try:
        result = get_sender().send(request)
    except DeliveryError as exc:
        return TestResult(False, _("The test could not be delivered: %(error)s", error=exc.message))
    excerpt = result.excerpt[:TEST_EXCERPT]
    summary = _(
        "The endpoint answered HTTP %(status)d in %(ms)d ms.",
        status=result.status_code,
        ms=round(result.duration * 1000),
    )
    return TestResult(result.ok, summary, excerpt)
