"""Logged-in sessions: what is stored at login, and when a session ends.

A session cookie holds the user id (Flask-Login), the time of login, a
fingerprint of the password hash and a random session key whose digest is a
`user_sessions` row. It ends after SESSION_IDLE_TIMEOUT without a request
(the signed cookie's age), SESSION_MAX_AGE after login, when the user is
deactivated, when the password changes (other devices are logged out), and
at logout: the row is deleted, so a copy of the cookie replayed later is
refused (the cookie is signed, not stored, so only the row can revoke it).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from flask import session
from flask_login import login_user
from sqlalchemy import delete

from webapp.admin.security import SESSION_MAX_AGE
from webapp.crypto import token_digest
from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.models.base import utcnow

LOGIN_AT = "login_at"
FINGERPRINT = "pw"
SESSION_KEY = "sid"


def password_fingerprint(user: User) -> str:
    """A short digest that changes whenever the user's password changes."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def start_session(user: User) -> None:
    """Log `user` in for this browser (a permanent, expiring, revocable session); commits."""
    now = utcnow()
    key = secrets.token_urlsafe(32)
    db.session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id, UserSession.created_at < now - SESSION_MAX_AGE
        )
    )
    db.session.add(UserSession(id=token_digest(key), user_id=user.id, created_at=now))
    db.session.commit()
    session.clear()
    session.permanent = True
    login_user(user)
    session[LOGIN_AT] = int(now.timestamp())
    session[FINGERPRINT] = password_fingerprint(user)
    session[SESSION_KEY] = key


def end_session() -> None:
    """Revoke this browser's session (logout); commits. The cookie is cleared by the caller."""
    key = session.get(SESSION_KEY)
    if isinstance(key, str):
        db.session.execute(delete(UserSession).where(UserSession.id == token_digest(key)))
        db.session.commit()


def end_other_sessions(user: User) -> None:
    """Revoke every session of `user` but this browser's (after a password change); commits.

    When `user` is not the one logged in here, all their sessions end.
    """
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    key = session.get(SESSION_KEY)
    if isinstance(key, str):
        statement = statement.where(UserSession.id != token_digest(key))
    db.session.execute(statement)
    db.session.commit()


def refresh_fingerprint(user: User) -> None:
    """Keep this session valid after the user changed their own password."""
    session[FINGERPRINT] = password_fingerprint(user)


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: None ends the session."""
    key = session.get(SESSION_KEY)
    if not isinstance(key, str):
        return None
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
    row = db.session.get(UserSession, token_digest(key))
    if row is None or row.user_id != user.id:
        return None
    return user
