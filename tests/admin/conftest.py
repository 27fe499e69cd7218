"""Fixtures for the admin panel's tests: logged-in clients per role."""

from __future__ import annotations

import pytest

from tests.admin.admin_support import PASSWORD, Browser


@pytest.fixture
def as_role(app, make):
    """as_role("viewer") -> a Browser logged in as a new user with that role."""
    made: dict[str, Browser] = {}

    def build(role: str) -> Browser:
        if role not in made:
            email = f"{role}@example.org"
            make.user(email, role=role, password=PASSWORD)
            browser = Browser(app.test_client())
            response = browser.login(email)
            assert response.status_code == 302, response.text
            made[role] = browser
        return made[role]

    return build


@pytest.fixture
def editor(as_role) -> Browser:
    return as_role("editor")


@pytest.fixture
def admin(as_role) -> Browser:
    return as_role("admin")


@pytest.fixture
def viewer(as_role) -> Browser:
    return as_role("viewer")
