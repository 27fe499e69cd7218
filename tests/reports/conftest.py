"""Fixtures for failure reports: `smtp` (aiosmtpd on loopback), `failures` (rows).

The app of these tests sends mail to `smtp` and has BASE_URL set.
"""

from __future__ import annotations

import pytest

from tests.reports.reports_support import BASE_URL, SENDER, Failures, SMTPServer


@pytest.fixture
def smtp():
    server = SMTPServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def app_env(app_env, smtp):
    app_env.update(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAIL_DEFAULT_SENDER=SENDER,
        BASE_URL=BASE_URL,
    )
    return app_env


@pytest.fixture
def failures(app) -> Failures:
    return Failures(app)
