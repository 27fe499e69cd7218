"""Logged-in sessions: what is stored at login, and when a session ends.

A session holds the user id (Flask-Login), the time of login and a
fingerprint of the password hash. It ends after SESSION_IDLE_TIMEOUT without
a request (the signed cookie's age), SESSION_MAX_AGE after login, when the
user is deactivated, or when the password changes (other devices are logged
out).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from flask import session
from flask_login import login_user

from webapp.admin.security import SESSION_MAX_AGE
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow

LOGIN_AT = "login_at"
FINGERPRINT = "pw"


def password_fingerprint(user: User) -> str:
    """A short digest that changes whenever the user's password changes."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def start_session(user: User) -> None:
    """Log `user` in for this browser (a permanent, expiring session)."""
    session.clear()
    session.permanent = True
    login_user(user)
    session[LOGIN_AT] = int(utcnow().timestamp())
    session[FINGERPRINT] = password_fingerprint(user)


def refresh_fingerprint(user: User) -> None:
    """Keep this session valid after the user changed their own password."""
    session[FINGERPRINT] = password_fingerprint(user)


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: None ends the session."""
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    if user is None or not user.is_active:
        return None
    if session.get(FINGERPRINT) != password_fingerprint(user):
        return None
    login_at = session.get(LOGIN_AT)
    if not isinstance(login_at, int):
        return None
    if utcnow() - datetime.fromtimestamp(login_at, UTC) > SESSION_MAX_AGE:
        return None
    return user
