"""Fixtures for the attachment tests (helpers are in attachment_support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def app_env(app_env):
    # Hooks point at the loopback `endpoint` fixture.
    app_env["SSRF_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    return app_env
