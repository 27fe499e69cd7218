"""A real ODK Central for the sources tests: one server per test session.

Started with ../shared/odk-central/start.sh (its README says how) on a
database of our own; skipped, with the reason, where PostgreSQL or the npm
registry (for its first install) is missing. Each test makes its own Central
project and form, so tests never see each other's submissions.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from scripts.benchlib.central import CentralApi, instance  # the bench's too
from tests.admin.conftest import as_role, editor  # noqa: F401  (panel fixtures)
from tests.api.conftest import tokens  # noqa: F401  (API fixture)
from tests.helpers import free_port

CENTRAL_HOME = Path(__file__).resolve().parents[3] / "shared" / "odk-central"
for candidate in (CENTRAL_HOME, Path("/work/shared/odk-central")):
    if (candidate / "start.sh").exists():
        CENTRAL_HOME = candidate
        break


class CentralServer:
    """The running server: its URL and admin login; stop() and start() keep the URL."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid: int | None = None
        self.email = self.password = ""

    def start(self, *, fresh: bool = False) -> None:
        command = [str(CENTRAL_HOME / "start.sh"), "--db", self.database, "--port", str(self.port)]
        if fresh:
            command.append("--fresh")
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        info = json.loads(done.stdout.strip().splitlines()[-1])
        self.pid, self.email, self.password = info["pid"], info["email"], info["password"]
        assert info["url"] == self.url

    def stop(self) -> None:
        if self.pid is not None:
            subprocess.run([str(CENTRAL_HOME / "stop.sh"), str(self.pid)], check=False, timeout=30)
            self.pid = None


@pytest.fixture(scope="session")
def central_server():
    from tests.helpers import pg_unavailable_reason

    reason = pg_unavailable_reason()
    if reason is not None:
        pytest.skip(f"ODK Central needs PostgreSQL: {reason}")
    if not (CENTRAL_HOME / "start.sh").exists():
        pytest.skip(f"ODK Central test server not found at {CENTRAL_HOME}")
    server = CentralServer(f"fh_central_{uuid.uuid4().hex[:8]}")
    try:
        server.start(fresh=True)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"ODK Central could not start (npm registry or PostgreSQL missing?): {exc}")
    yield server
    server.stop()
    for statement in (
        f"drop database if exists {server.database} with (force)",
        f"drop role if exists {server.database}",
    ):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", "test", "-c", statement],
            check=False,
            capture_output=True,
        )


class CentralAdmin(CentralApi):
    """Central's API as its administrator, for tests: also Collect's uploads, edits, reviews."""

    timeout = 30
    form_prefix = "survey_"

    def __init__(self, server: CentralServer) -> None:
        self.server = server
        super().__init__(server.url, server.email, server.password)

    def login(self) -> None:
        """Log in with the server's current administrator (it may have been restarted)."""
        self.email, self.password = self.server.email, self.server.password
        super().login()

    def submit_openrosa(self, project: int, form_id: str, name: str = "Bob") -> str:
        """A submission as ODK Collect sends it: an app user, OpenRosa multipart."""
        user = self.call(
            "POST", f"/v1/projects/{project}/app-users", json={"displayName": "collect"}
        ).json()
        self.call(
            "POST",
            f"/v1/projects/{project}/forms/{form_id}/assignments/app-user/{user['id']}",
        )
        instance_id = f"uuid:{uuid.uuid4()}"
        answer = requests.post(
            f"{self.server.url}/v1/key/{user['token']}/projects/{project}/submission",
            files={
                "xml_submission_file": (
                    "submission.xml",
                    instance(form_id, instance_id, name, 7),
                    "text/xml",
                )
            },
            headers={"X-OpenRosa-Version": "1.0"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return instance_id

    def edit(self, project: int, form_id: str, root_id: str, previous: str, name: str) -> str:
        """A new version of a submission (REST PUT with meta/deprecatedID)."""
        instance_id = f"uuid:{uuid.uuid4()}"
        self.call(
            "PUT",
            f"/v1/projects/{project}/forms/{form_id}/submissions/{root_id}",
            data=instance(form_id, instance_id, name, 3, deprecated=previous),
            headers={"Content-Type": "application/xml"},
        )
        return instance_id

    def review(self, project: int, form_id: str, root_id: str, state: str = "approved") -> None:
        self.call(
            "PATCH",
            f"/v1/projects/{project}/forms/{form_id}/submissions/{root_id}",
            json={"reviewState": state},
        )


@pytest.fixture
def central(central_server) -> CentralAdmin:
    return CentralAdmin(central_server)


@pytest.fixture
def app_env(app_env):
    """Central runs on loopback: let sources (and hooks) reach 127.0.0.0/8."""
    return {**app_env, "SSRF_ALLOWED_NETWORKS": "127.0.0.0/8"}


class Sources:
    """Connects forms to Central and drives polls (time is moved in the database)."""

    def __init__(self, app, server: CentralServer) -> None:
        self.app = app
        self.server = server

    def connect(self, form_uid: str, project: int, form_id: str, **values) -> int:
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import Form
        from webapp.sources.settings import clean_source_settings, save_source

        settings = {
            "url": self.server.url,
            "project_id": project,
            "xml_form_id": form_id,
            "email": self.server.email,
            "password": self.server.password,
            **values,
        }
        with self.app.app_context():
            cleaned, problems = clean_source_settings(settings)
            assert not problems, problems
            form = db.session.scalar(select(Form).where(Form.uid == form_uid))
            source, _created = save_source(form, cleaned)
            db.session.commit()
            return source.id

    def make_due(self, source_id: int, *, expire_lease: bool = False) -> None:
        from sqlalchemy import update

        from webapp.extensions import db
        from webapp.models import Source
        from webapp.models.base import utcnow

        values = {"next_poll_at": utcnow() - timedelta(seconds=1)}
        if expire_lease:
            values["leased_until"] = utcnow() - timedelta(seconds=1)
        with self.app.app_context():
            db.session.execute(update(Source).where(Source.id == source_id).values(**values))
            db.session.commit()

    def poll(self, source_id: int, *, expire_lease: bool = False) -> None:
        """Make the source due, queue the periodic dispatch, and run a real worker."""
        from tests.helpers import run_worker
        from webapp.delivery.queue import delivery_queue

        self.make_due(source_id, expire_lease=expire_lease)
        with self.app.app_context():
            delivery_queue().enqueue("webapp.sources.jobs.dispatch")
        run_worker(self.app)

    def state(self, source_id: int):
        from webapp.extensions import db
        from webapp.models import Source

        with self.app.app_context():
            source = db.session.get(Source, source_id)
            db.session.expunge(source)
            return source


@pytest.fixture
def sources(app, central_server) -> Sources:
    return Sources(app, central_server)
