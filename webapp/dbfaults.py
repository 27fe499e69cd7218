"""One answer to "did the database go away?", for ingest (503) and the drainer (wait, retry)."""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the database went away, or cannot be reached yet.

    SQLAlchemy wraps the driver's errors: OperationalError covers a refused
    connection, "the database system is shutting down / starting up" and a
    session cut by the server; InterfaceError a connection already closed;
    TimeoutError no free connection in the pool; ``connection_invalidated``
    any other error SQLAlchemy recognised as a lost connection. The driver's
    own errors count too (code that uses a raw connection sees them unwrapped).
    """
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _UNAVAILABLE)
