"""Helpers for the failure report tests: a real SMTP server, failed logs, a run.

`SMTPServer` is aiosmtpd on loopback; every message it accepts is parsed back
with the `email` package (`.messages`), with its envelope recipients. It can
be told to answer 451 after N messages or to refuse some addresses with 550.
"""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.helpers import free_port
from webapp.extensions import db
from webapp.models import FAILED, DeliveryLog, Form, Hook, Submission, User
from webapp.models.base import utcnow

BASE_URL = "https://formhooks.example.org"
SENDER = "reports@formhooks.example.org"
PASSWORD = "correct horse"


@dataclass
class Received:
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return self.message["To"]

    @property
    def subject(self) -> str:
        return self.message["Subject"]

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content().replace("\r\n", "\n")

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content().replace("\r\n", "\n")


class SMTPServer:
    """aiosmtpd on 127.0.0.1 recording what it accepts (thread-safe)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.accept_only: int | None = None  # then answer 451 to DATA
        self.refuse: set[str] = set()  # RCPT TO answered 550
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            if self.accept_only is not None and len(self.messages) >= self.accept_only:
                return "451 4.3.0 Mail server temporarily rejected message"
            parsed = email.message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if m.rcpt_tos == [address]]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


class Failures:
    """Makes users, forms, hooks and failed delivery logs directly in the database."""

    def __init__(self, app) -> None:
        self.app = app

    def user(self, email: str, role: str = "editor", opt_in: bool = True, active: bool = True):
        with self.app.app_context():
            user = User(email=email, role=role, report_opt_in=opt_in, is_active_user=active)
            # A cheap hash: these tests are about mail, not password storage.
            user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
            db.session.add(user)
            db.session.commit()
            return user.id

    def form(self, name: str, owner: str) -> str:
        with self.app.app_context():
            form = Form(name=name, owner=User.by_email(owner))
            db.session.add(form)
            db.session.commit()
            return form.uid

    def hook(self, form_uid: str, name: str, emails=(), notify: bool = True) -> str:
        with self.app.app_context():
            form = db.session.scalar(select(Form).where(Form.uid == form_uid))
            hook = Hook(
                form=form,
                name=name,
                endpoint="https://crm.example.org/hook",
                email_notification=notify,
                notification_emails=list(emails),
            )
            db.session.add(hook)
            db.session.commit()
            return hook.uid

    def failed(
        self,
        hook_uid: str,
        instance_id: str,
        status_code: int | None = 500,
        message: str = "HTTP 500: Internal Server Error",
        at: datetime | None = None,
    ) -> str:
        """A log that failed for good; returns its uid."""
        with self.app.app_context():
            hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
            submission = Submission(
                form_id=hook.form_id,
                instance_id=instance_id,
                source_format="json",
                content_type="application/json",
                body=b"{}",
                data={},
            )
            at = at or utcnow() - timedelta(minutes=5)
            entry = DeliveryLog(
                hook=hook,
                submission=submission,
                status=FAILED,
                tries=4,
                status_code=status_code,
                message=message,
                next_retry_at=None,
                last_attempt_at=at,
                date_modified=at,
            )
            db.session.add_all([submission, entry])
            db.session.commit()
            return entry.uid

    def logs(self) -> dict[str, DeliveryLog]:
        """Every log by uid, detached."""
        with self.app.app_context():
            rows = db.session.scalars(select(DeliveryLog)).all()
            db.session.expunge_all()
            return {row.uid: row for row in rows}


def send(app, **kwargs):
    """One report run in its own app context, as the CLI or a job would."""
    from webapp.reports.sending import send_reports

    with app.app_context():
        return send_reports(**kwargs)
