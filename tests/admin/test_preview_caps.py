"""The panel's preview is built within the wrapper's caps (README, "What a hook sends")."""

from __future__ import annotations

import html
import tracemalloc

from tests.admin.admin_support import post_submission
from webapp.delivery.wrapper import MAX_WRAPPED_BYTES, PLACEHOLDER


def test_the_preview_of_a_multiplying_wrapper_is_an_error_not_100_mb(app, client, editor, make):
    """A hook saved before the cap, with 1,000 placeholders, and a 100 KB submission."""
    form_uid, token = make.form()
    template = "[" + ", ".join([PLACEHOLDER] * 1000) + "]"
    uid = make.hook(form_uid, payload_template=template)
    post_submission(client, form_uid, token, {"text": "x" * 100_000, "meta": {"instanceID": "a"}})
    tracemalloc.start()
    try:
        response = editor.get(f"/forms/{form_uid}/hooks/{uid}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert "The custom wrapper would build a body of 100," in page
    assert f"at most {MAX_WRAPPED_BYTES:,} bytes can be sent." in page
    assert 'id="preview-body"' not in page
    assert len(response.data) < 1_000_000
    assert peak < 20_000_000  # far from the 100 MB body
