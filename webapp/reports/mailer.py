"""Outgoing mail: whether it is configured, and an SMTP session with a timeout.

Messages are Flask-Mail `Message`s; the connection is Flask-Mail's with one
change: a socket timeout. Flask-Mail opens `smtplib.SMTP` without one, so a
mail server that accepts the connection and then says nothing would hold a
report run (or an admin's request) forever.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from flask import Flask, current_app
from flask_mail import BadHeaderError, Connection, Message

from webapp.reports.i18n import _

SMTP_TIMEOUT = 30.0  # seconds, for connecting and for each SMTP command

#: What a failed send raises: SMTP answers, network errors, unusable headers.
SEND_ERRORS = (smtplib.SMTPException, OSError, BadHeaderError)


def mail_status(app: Flask) -> str | None:
    """None when outgoing mail is configured, else a message for the staff.

    The admin dashboard shows it; `flask reports send` prints it.
    """
    if app.config["MAIL_CONFIGURED"]:
        return None
    return _(
        "Email is not configured, so failure reports are not sent: set MAIL_SERVER "
        "(and MAIL_PORT, MAIL_USERNAME, MAIL_PASSWORD, MAIL_DEFAULT_SENDER as needed)."
    )


def is_permanent(error: BaseException) -> bool:
    """True when sending again cannot help: the address itself is refused (5xx) or unusable."""
    if isinstance(error, BadHeaderError):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _reason in error.recipients.values())
    return False


def describe(error: BaseException) -> str:
    """A short, human account of a send error (no secrets: SMTP answers and errno text)."""
    if isinstance(error, smtplib.SMTPResponseException):
        reason = error.smtp_error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return f"SMTP {error.smtp_code}: {reason}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address} refused (SMTP {code}: {reason.decode('utf-8', 'replace')})"
            for address, (code, reason) in error.recipients.items()
        )
    return str(error) or type(error).__name__


class _Connection(Connection):
    """Flask-Mail's connection, with SMTP_TIMEOUT on the socket."""

    def configure_host(self) -> smtplib.SMTP:
        factory = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = factory(self.mail.server, self.mail.port, timeout=SMTP_TIMEOUT)
        try:
            host.set_debuglevel(int(self.mail.debug))
            if self.mail.use_tls:
                host.starttls()
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host


@contextmanager
def smtp_session() -> Iterator[Callable[[Message], None]]:
    """Yield `send(message)`, which sends over one SMTP connection.

    The connection is opened on the first send. A send that fails raises one of
    SEND_ERRORS and drops the connection; the next send opens a new one, so one
    bad message or a dropped connection does not stop the others.
    """
    state: dict[str, _Connection | None] = {"connection": None}

    def close(polite: bool) -> None:
        connection, state["connection"] = state["connection"], None
        if connection is None or connection.host is None:
            return
        if polite:
            with suppress(*SEND_ERRORS):
                connection.host.quit()
                return
        connection.host.close()

    def send(message: Message) -> None:
        try:
            if state["connection"] is None:
                state["connection"] = _Connection(current_app.extensions["mail"]).__enter__()
            state["connection"].send(message)
        except SEND_ERRORS:
            close(polite=False)
            raise

    try:
        yield send
    finally:
        close(polite=True)
