"""DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW bound every pool of a process."""

from __future__ import annotations

import pytest

from webapp.config import ConfigError, load_config


def _pools(app):
    from webapp.extensions import db
    from webapp.ingest.storing import ingest_engine

    with app.app_context():
        return db.engine.pool, ingest_engine().pool


def test_unset_keeps_each_pools_own_sizes(make_app):
    main, ingest = _pools(make_app())
    assert (main.size(), main._max_overflow) == (5, 10)  # SQLAlchemy's defaults
    assert (ingest.size(), ingest._max_overflow) == (8, 8)


def test_set_bounds_the_panels_and_the_webhooks_pools(make_app, db_backend):
    app = make_app(DATABASE_POOL_SIZE="2", DATABASE_MAX_OVERFLOW="0")
    main, ingest = _pools(app)
    assert (main.size(), main._max_overflow) == (2, 0)
    assert (ingest.size(), ingest._max_overflow) == (2, 0)
    if db_backend[0] != "postgresql":
        return
    # A third connection is refused, not opened: the limit holds in the
    # pool, not just in its settings (the timeout is lowered so the refusal
    # comes at once instead of after 30 s).
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from webapp.ingest.storing import ingest_engine

    with app.app_context():
        engine = ingest_engine()
        engine.pool._timeout = 0.01
        held = [engine.connect(), engine.connect()]
        try:
            with pytest.raises(PoolTimeout):
                engine.connect()
        finally:
            for connection in held:
                connection.close()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_POOL_SIZE", "0", "DATABASE_POOL_SIZE must be at least 1"),
        ("DATABASE_POOL_SIZE", "many", "DATABASE_POOL_SIZE must be a whole number"),
        ("DATABASE_MAX_OVERFLOW", "-1", "DATABASE_MAX_OVERFLOW must be at least 0"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({name: value}, str(tmp_path))
