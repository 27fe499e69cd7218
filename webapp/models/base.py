"""Shared column types and helpers for the models."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

_UID_ALPHABET = string.ascii_letters + string.digits


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_uid(prefix: str, length: int = 22) -> str:
    """A random KoboToolbox-style uid such as `aZ7kqP3wXbLmN2vR8tYs5d`."""
    return prefix + "".join(secrets.choice(_UID_ALPHABET) for _ in range(length - len(prefix)))


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL stores `timestamptz`; SQLite stores naive UTC text. Either way
    Python sees aware UTC datetimes, and naive ones are refused on write.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def secret_box():
    """The app's SecretBox (see webapp.crypto)."""
    return current_app.extensions["formhooks.secret_box"]
