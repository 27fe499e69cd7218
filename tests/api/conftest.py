"""Fixtures for the management API: users with tokens, a client that sends them, a worker.

Every response body the `api` client receives is kept in `api.bodies`, so a
test can assert that a secret never appeared in any of them.
"""

from __future__ import annotations

import functools

import pytest
from rq import SimpleWorker
from werkzeug.security import generate_password_hash

from webapp.delivery import queue as q
from webapp.extensions import db
from webapp.models import ApiToken, User


@pytest.fixture
def app_env(app_env):
    # Hooks point at the loopback `endpoint` fixture; retries are due at once.
    app_env["SSRF_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    app_env["RETRY_DELAYS"] = "0,0,0"
    app_env["DELIVERY_TIMEOUT"] = "5"
    return app_env


class Api:
    """A test client that authenticates with `Authorization: Token ...`."""

    def __init__(self, client, tokens: dict[str, str], role: str = "editor", bodies=None) -> None:
        self.client = client
        self.tokens = tokens
        self.role = role
        self.bodies: list[str] = [] if bodies is None else bodies

    def as_role(self, role: str) -> Api:
        return Api(self.client, self.tokens, role, self.bodies)

    def open(self, method: str, path: str, json=None, headers=None, **kwargs):
        headers = {"Authorization": f"Token {self.tokens[self.role]}", **(headers or {})}
        response = self.client.open(path, method=method, json=json, headers=headers, **kwargs)
        self.bodies.append(response.get_data(as_text=True))
        return response

    def get(self, path: str, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.open("POST", path, json=json, **kwargs)

    def patch(self, path: str, json=None, **kwargs):
        return self.open("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.open("DELETE", path, **kwargs)


@functools.cache
def _password_hash() -> str:
    """One hash of "correct horse" per process: hashing is deliberately slow."""
    return generate_password_hash("correct horse")


@pytest.fixture
def tokens(app) -> dict[str, str]:
    """{role: plaintext API token}, one user per role (the editor is alice@example.org)."""
    plaintexts = {}
    with app.app_context():
        for role, email in [
            ("admin", "ada@example.org"),
            ("editor", "alice@example.org"),
            ("viewer", "victor@example.org"),
        ]:
            user = User(email=email, role=role, password_hash=_password_hash())
            db.session.add(user)
            _, plaintexts[role] = ApiToken.issue(user, name="tests")
        db.session.commit()
    return plaintexts


@pytest.fixture
def api(client, tokens) -> Api:
    return Api(client, tokens)


def drain(app, rounds: int = 10) -> None:
    """Run a real RQ SimpleWorker in burst mode until no job is left, due retries included.

    With RETRY_DELAYS=0,0,0 a failed attempt's retry is due at once: each
    round moves due rq-scheduler jobs to the queue and works them off.
    """
    with app.app_context():
        connection = q.redis_connection()
        scheduler = q.scheduler(connection)
        for _ in range(rounds):
            SimpleWorker([q.delivery_queue(connection)], connection=connection).work(burst=True)
            due = list(scheduler.get_jobs_to_queue())  # enqueue_jobs() returns a generator
            if not due:
                return
            for job in due:
                scheduler.enqueue_job(job)
    raise AssertionError(f"jobs still due after {rounds} rounds")


@pytest.fixture
def worker(app):
    """`worker()` delivers everything that is due now, retries included."""
    return lambda: drain(app)
