"""Login throttling by client address and account together (docs/security.md).

Two counters are kept per failed login, in the database:

- (address, account): PAIR_LIMIT failures within WINDOW block that pair for
  LOCK_DURATION. Someone else guessing a password from their address never
  locks the owner out of theirs.
- (address, ""): ADDRESS_LIMIT failures within WINDOW, whatever the
  accounts, block that address for LOCK_DURATION (password spraying).

The account is the email as typed (normalised), known or not, so unknown
and known emails are throttled alike and the answers reveal nothing. A
successful login clears its (address, account) counter. Every function
takes `now`, so tests drive time instead of waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import LoginThrottle
from webapp.models.base import UTCDateTime

PAIR_LIMIT = 5
ADDRESS_LIMIT = 50
WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
ANY_ACCOUNT = ""


def _keys(address: str, account: str) -> list[tuple[str, str, int]]:
    return [(address, account, PAIR_LIMIT), (address, ANY_ACCOUNT, ADDRESS_LIMIT)]


def is_blocked(address: str, account: str, now: datetime) -> bool:
    """Whether logins for `account` from `address` are refused at the moment."""
    pairs = [(a, b) for a, b, _ in _keys(address, account)]
    found = db.session.scalar(
        select(LoginThrottle.address)
        .where(
            tuple_(LoginThrottle.address, LoginThrottle.account).in_(pairs),
            LoginThrottle.blocked_until > now,
        )
        .limit(1)
    )
    return found is not None


def record_failure(address: str, account: str, now: datetime) -> bool:
    """Count a failed login (atomically: parallel tries all count); commits.

    Returns whether this failure blocked the pair or the address.
    """
    blocked = False
    for key_address, key_account, limit in _keys(address, account):
        failures = _increment(key_address, key_account, now)
        if failures >= limit:
            db.session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.address == key_address, LoginThrottle.account == key_account)
                .values(failures=0, window_start=now, blocked_until=now + LOCK_DURATION)
            )
            blocked = True
    _forget_expired(now)
    db.session.commit()
    return blocked


def _increment(address: str, account: str, now: datetime) -> int:
    """Add one failure to a counter (a new window if the last one is over); the new count."""
    table = LoginThrottle.__table__
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = table.c.window_start <= now - WINDOW
    statement = insert(table).values(
        address=address, account=account, failures=1, window_start=now, blocked_until=None
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.address, table.c.account],
        set_={
            "failures": case((stale, 1), else_=table.c.failures + 1),
            "window_start": case((stale, literal(now, UTCDateTime())), else_=table.c.window_start),
        },
    ).returning(table.c.failures)
    return db.session.execute(statement).scalar_one()


def _forget_expired(now: datetime) -> None:
    """Drop counters whose window and block are both over (the table stays small)."""
    db.session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_start <= now - WINDOW,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now),
        )
    )


def record_success(address: str, account: str) -> None:
    """A successful login clears the failures of its (address, account) pair (not committed)."""
    db.session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.address == address, LoginThrottle.account == account
        )
    )


def forget_account(account: str) -> None:
    """Unblock an account from every address (an administrator set a new password)."""
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.account == account))
