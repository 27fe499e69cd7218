"""Turn a digest into an email (subject, text part, HTML part), in the reader's language."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_mail import Message

from webapp.reports.digest import Digest
from webapp.reports.i18n import _, ngettext, recipient_locale, template_helpers

#: Hint keys (see digest.HINT_ORDER) -> the advice shown under a hook.
HINTS = {
    "internal": lambda: _(
        "The address is internal (private, loopback or link-local), and Formhooks refuses "
        "to send there: use the service's public address, or ask your administrator to "
        "allow that network (SSRF_ALLOWED_NETWORKS)."
    ),
    "credentials": lambda: _(
        "The service refused the credentials (401/403): check the hook's username, "
        "password and custom headers."
    ),
    "not_found": lambda: _("The service answered 404 (not found): check the hook's URL."),
    "redirect": lambda: _(
        "The service redirects to another address: update the hook's URL to the new "
        "address given in the message."
    ),
    "rejected": lambda: _(
        "The service refused the data (4xx): check the format, the fields sent and the "
        "wrapper it expects."
    ),
    "server_error": lambda: _(
        "The service had an error (5xx): the problem is on its side; retry once it is fixed."
    ),
    "unreachable": lambda: _(
        "The connection was refused or timed out: is the server up, and reachable from Formhooks?"
    ),
    "dns": lambda: _("The host name could not be found: check the host name in the hook's URL."),
    "tls": lambda: _("The secure connection failed (TLS): check the server's certificate."),
}

#: Source error codes (webapp.sources.client.ERROR_CODES) -> the advice shown under a form.
SOURCE_HINTS = {
    "login": lambda: _("ODK Central refused the email or password: update the login."),
    "forbidden": lambda: _(
        "The ODK Central user has no rights on this project or form: give it a role there."
    ),
    "not_found": lambda: _("ODK Central has no such project or form: check the project and form."),
    "unreachable": lambda: _(
        "ODK Central could not be reached: is the server up, and is its address right?"
    ),
    "timeout": lambda: _("ODK Central did not answer in time: is the server up?"),
    "tls": lambda: _("The secure connection failed (TLS): check the server's certificate."),
    "blocked": lambda: _(
        "The address is internal, and Formhooks refuses to connect there: use the server's "
        "public address, or ask your administrator to allow that network "
        "(SSRF_ALLOWED_NETWORKS)."
    ),
    "redirect": lambda: _("ODK Central redirects to another address: use that address."),
    "server_error": lambda: _(
        "ODK Central had an error: the problem is on its side; fetching resumes once it is fixed."
    ),
    "bad_response": lambda: _(
        "The server does not answer as ODK Central does: check the server's address."
    ),
}


def base_url() -> tuple[str, bool]:
    """The public URL for links, and whether it was configured (BASE_URL)."""
    configured = current_app.config["BASE_URL"]
    if configured:
        return configured, True
    return f"http://127.0.0.1:{current_app.config['PORT']}", False


def subject(digest: Digest) -> str:
    """E.g. "Formhooks: 3 failed deliveries in 2 forms", "Formhooks: 1 source error"."""
    sources = ngettext("%(num)d source error", "%(num)d source errors", digest.source_errors)
    if not digest.failures:
        return _("Formhooks: %(sources)s", sources=sources)
    deliveries = _(
        "Formhooks: %(deliveries)s in %(forms)s",
        deliveries=ngettext(
            "%(num)d failed delivery", "%(num)d failed deliveries", digest.failures
        ),
        forms=ngettext("%(num)d form", "%(num)d forms", digest.failing_forms),
    )
    if not digest.source_errors:
        return deliveries
    return _("%(deliveries)s, %(sources)s", deliveries=deliveries, sources=sources)


def render(template: str, **context: Any) -> str:
    """Render templates/email/<template> without request-bound context processors.

    Reports are built in workers and CLI commands, where there is no request.
    """
    env = current_app.jinja_env
    return env.get_template(f"email/{template}").render(**template_helpers(), **context)


def report_message(digest: Digest, language: str | None) -> Message:
    """The email for one digest, in `language` (None: the default)."""
    url, url_configured = base_url()
    with recipient_locale(language):
        hints = {key: text() for key, text in HINTS.items()}
        source_hints = {key: text() for key, text in SOURCE_HINTS.items()}
        context = {
            "digest": digest,
            "hints": hints,
            "source_hints": source_hints,
            "base_url": url,
            "base_url_configured": url_configured,
        }
        return Message(
            subject=subject(digest),
            recipients=[digest.recipient],
            body=render("failure_report.txt", **context),
            html=render("failure_report.html", **context),
            extra_headers={"Auto-Submitted": "auto-generated"},
        )


def mail_check_message(recipient: str, language: str | None) -> Message:
    """The admin's "send a test email": proves the mail settings work."""
    url, url_configured = base_url()
    config = current_app.config
    with recipient_locale(language):
        context = {
            "recipient": recipient,
            "mail_server": f"{config['MAIL_SERVER']}:{config['MAIL_PORT']}",
            "sender": config["MAIL_DEFAULT_SENDER"],
            "base_url": url,
            "base_url_configured": url_configured,
        }
        return Message(
            subject=_("Formhooks: test email"),
            recipients=[recipient],
            body=render("test_email.txt", **context),
            html=render("test_email.html", **context),
            extra_headers={"Auto-Submitted": "auto-generated"},
        )
