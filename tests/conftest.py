"""Shared fixtures: a private Redis, SQLite and PostgreSQL databases, the app.

Every test that takes `app` runs twice, once per database. PostgreSQL is the
one on 127.0.0.1:5432 (TEST_POSTGRES_URL to change it); where none answers,
its half is skipped with a message naming why, shown in the summary.
"""

from __future__ import annotations

import contextlib
import os

import pytest
from sqlalchemy import text

from tests.helpers import (
    ROOT,
    SECRET_KEY,
    Endpoint,
    Factory,
    RedisServer,
    free_port,
    pg_unavailable_reason,
    postgres_database,
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory):
    """Migrated empty databases: {'sqlite': url, 'postgresql': url or skip reason}."""
    from flask_migrate import upgrade

    from webapp import create_app

    urls: dict[str, str] = {}
    sqlite_path = tmp_path_factory.mktemp("sqlite") / "test.sqlite3"
    urls["sqlite"] = f"sqlite:///{sqlite_path}"
    reason = pg_unavailable_reason()
    with contextlib.ExitStack() as stack:
        if reason is None:
            urls["postgresql"] = stack.enter_context(postgres_database())
        else:
            urls["postgresql_skip"] = reason
        instance = tmp_path_factory.mktemp("instance")
        for key in ("sqlite", "postgresql"):
            if key in urls:
                app = create_app(
                    {
                        "DATABASE_URL": urls[key],
                        "SECRET_KEY": SECRET_KEY,
                        "FORMHOOKS_INSTANCE_PATH": str(instance),
                    }
                )
                with app.app_context():
                    upgrade()
                    from webapp.extensions import db

                    db.engine.dispose()
        yield urls


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database of the test's own, with no table: (backend, url)."""
    if request.param == "sqlite":
        yield request.param, f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(f"PostgreSQL half skipped: {reason}")
    with postgres_database() as url:
        yield request.param, url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request, database_urls):
    if request.param not in database_urls:
        pytest.skip(f"PostgreSQL half skipped: {database_urls['postgresql_skip']}")
    return request.param, database_urls[request.param]


@pytest.fixture
def app_env(request, db_backend, redis_server, tmp_path):
    """The environment-style settings of the test app; tests may add to it.

    A module or test marked `@pytest.mark.settings(NAME="value", ...)` gets
    those on top (the closest mark wins), e.g. `LOOPBACK_HOOKS` of
    tests/helpers.py for hooks that send to a local endpoint.
    """
    env = {
        "DATABASE_URL": db_backend[1],
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": SECRET_KEY,
        "FORMHOOKS_INSTANCE_PATH": str(tmp_path / "instance"),
        "SSRF_ALLOWED_NETWORKS": "",
        "MAIL_SERVER": "",
    }
    for mark in reversed(list(request.node.iter_markers("settings"))):
        env.update(mark.kwargs)
    return env


@pytest.fixture
def app(app_env):
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(app_env)
    app.config["TESTING"] = True
    app.extensions["formhooks.redis"].flushdb()
    with app.app_context():
        _empty_tables(db)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _empty_tables(db) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def make_app(app_env):
    """Build another app on the same databases with some settings changed."""
    from webapp import create_app
    from webapp.extensions import db

    made = []

    def build(**overrides: str):
        other = create_app({**app_env, **overrides})
        other.config["TESTING"] = True
        made.append(other)
        return other

    yield build
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def make(app):
    return Factory(app)


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """A Redis with TLS only, on a self-signed certificate (tests/tls_redis.py)."""
    from tests.tls_redis import TlsRedisServer, TlsUnsupported, tls_redis_unavailable

    reason = tls_redis_unavailable()
    if reason:
        pytest.skip(f"TLS Redis tests skipped: {reason}")
    try:
        server = TlsRedisServer(tmp_path_factory.mktemp("tls-redis")).start()
    except TlsUnsupported as exc:
        pytest.skip(f"TLS Redis tests skipped: redis-server has no TLS: {exc}")
    yield server
    server.stop()


# The real processes (web, worker, scheduler), for the e2e and fault tests.


@pytest.fixture
def stack_redis(tmp_path):
    """A Redis of the test's own, so it can be stopped and started."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def stack_env(app_env, stack_redis):
    env = dict(os.environ)
    env.update(app_env)
    env.update(
        {
            "REDIS_URL": stack_redis.url,
            "PORT": str(free_port()),
            "SSRF_ALLOWED_NETWORKS": "127.0.0.0/8",
            "SCHEDULER_INTERVAL": "0.2",
            "SWEEP_INTERVAL": "1",
            "WORKER_CONCURRENCY": "2",
            "DELIVERY_TIMEOUT": "5",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@pytest.fixture
def stack(stack_env, app, tmp_path, request):
    """The processes, not started yet (after `app` emptied the database); stopped after."""
    from tests.stack import Stack

    running = Stack(stack_env, tmp_path)
    yield running
    running.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(running.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
