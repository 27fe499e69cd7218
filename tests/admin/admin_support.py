"""Helpers for the admin panel's tests: a logged-in browser, CSRF tokens, bulk rows."""

from __future__ import annotations

import re

PASSWORD = "correct horse"
_CSRF = re.compile(r'name="(?:[\w-]+-)?csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Browser:
    """A test client that logs in and knows its session's CSRF token."""

    def __init__(self, client) -> None:
        self.client = client
        self._token: str | None = None

    def login(self, email: str, password: str = PASSWORD):
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        )
        self._token = None
        return response

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = csrf_from(self.client.get("/profile").text)
        return self._token

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kwargs)


def post_submission(client, form_uid: str, token: str, data: dict | None = None):
    """POST a JSON submission to the webhook URL; returns the JSON answer."""
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json=data if data is not None else {"q1": "a", "meta": {"instanceID": "uuid:one"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code in (200, 201), response.text
    return response.json


def add_logs(app, hook_uid: str, count: int, *, status: str = "success", start=None, step=None):
    """Insert `count` submissions and their logs for a hook, in bulk; returns the log uids.

    Log i is created at `start + i * step` (default: one second apart, ending now).
    """
    from datetime import timedelta

    from sqlalchemy import insert, select

    from webapp.extensions import db
    from webapp.models import DeliveryLog, Hook, Submission
    from webapp.models.base import new_uid, utcnow

    step = step or timedelta(seconds=1)
    start = start or utcnow() - step * count
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        ids = list(
            db.session.scalars(
                insert(Submission).returning(Submission.id, sort_by_parameter_order=True),
                [
                    {
                        "form_id": hook.form_id,
                        "instance_id": f"uuid:bulk-{new_uid('')}",
                        "source_format": "json",
                        "content_type": "application/json",
                        "body": b'{"n": %d}' % i,
                        "data": {"n": i},
                        "created_at": start + step * i,
                        "updated_at": start + step * i,
                        "edit_count": 0,
                    }
                    for i in range(count)
                ],
            )
        )
        uids = [new_uid("hl") for _ in range(count)]
        db.session.execute(
            insert(DeliveryLog),
            [
                {
                    "uid": uids[i],
                    "hook_id": hook.id,
                    "submission_id": ids[i],
                    "status": status,
                    "tries": 1 if status != "pending" else 0,
                    "status_code": {"success": 200, "failed": 500}.get(status),
                    "message": {"failed": "HTTP 500: boom"}.get(status, ""),
                    "date_created": start + step * i,
                    "date_modified": start + step * i,
                    "next_retry_at": None if status != "pending" else start + step * i,
                    "last_attempt_at": start + step * i if status != "pending" else None,
                }
                for i in range(count)
            ],
        )
        db.session.commit()
        return uids
