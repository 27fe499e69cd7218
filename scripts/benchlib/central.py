"""A real ODK Central for `make bench`'s `central` section: start, fill, read as a plain loop.

The server is ../shared/odk-central/start.sh (its README says how), on a
throw-away database of its own, stopped and dropped by `close()`.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[2]
HOMES = [
    Path(os.environ["CENTRAL_HOME"]) if os.environ.get("CENTRAL_HOME") else None,
    ROOT.parent.parent / "shared" / "odk-central",
    Path("/work/shared/odk-central"),
]

XFORM = """<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head><h:title>{form_id}</h:title>
    <model>
      <instance>
        <data id="{form_id}" version="1"><name/><age/><meta><instanceID/></meta></data>
      </instance>
      <bind nodeset="/data/name" type="string"/>
      <bind nodeset="/data/age" type="int"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/name"><label>Name</label></input>
    <input ref="/data/age"><label>Age</label></input>
  </h:body>
</h:html>"""


def home() -> Path:
    for candidate in HOMES:
        if candidate is not None and (candidate / "start.sh").exists():
            return candidate
    raise RuntimeError("ODK Central test server not found (set CENTRAL_HOME)")


def instance(form_id: str, instance_id: str, name: str, age: int, deprecated: str = "") -> str:
    """A submission of XFORM, as Central stores it; `deprecated` makes it an edit."""
    meta = f"<instanceID>{instance_id}</instanceID>"
    if deprecated:
        meta += f"<deprecatedID>{deprecated}</deprecatedID>"
    return (
        f'<data id="{form_id}" version="1"><name>{name}</name><age>{age}</age>'
        f"<meta>{meta}</meta></data>"
    )


class CentralApi:
    """Central's API as its administrator: projects, forms, submissions (bench and tests)."""

    timeout = 60  # seconds for one call
    form_prefix = "bench_"

    def __init__(self, url: str, email: str, password: str) -> None:
        self.url, self.email, self.password = url, email, password
        self.session = requests.Session()
        self.login()

    def login(self) -> None:
        answer = self.session.post(
            f"{self.url}/v1/sessions",
            json={"email": self.email, "password": self.password},
            timeout=30,
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = "Bearer " + answer.json()["token"]

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if answer.status_code >= 300:
            raise RuntimeError(f"Central {method} {path}: {answer.status_code} {answer.text}")
        return answer

    def new_form(self) -> tuple[int, str]:
        """A new project with one published form; returns (project id, xmlFormId)."""
        project = self.call("POST", "/v1/projects", json={"name": uuid.uuid4().hex}).json()["id"]
        form_id = self.form_prefix + uuid.uuid4().hex[:8]
        self.call(
            "POST",
            f"/v1/projects/{project}/forms?publish=true",
            data=XFORM.format(form_id=form_id),
            headers={"Content-Type": "application/xml"},
        )
        return project, form_id

    def submit(self, project: int, form_id: str, name: str = "Ann", age: int = 3) -> str:
        """A submission through the REST API; returns its instance id."""
        instance_id = f"uuid:{uuid.uuid4()}"
        self.call(
            "POST",
            f"/v1/projects/{project}/forms/{form_id}/submissions",
            data=instance(form_id, instance_id, name, age),
            headers={"Content-Type": "application/xml"},
        )
        return instance_id


class Central(CentralApi):
    """One running Central of the bench's own, logged in as its administrator."""

    def __init__(self, port: int) -> None:
        self.home = home()
        self.database = f"fh_bench_central_{uuid.uuid4().hex[:8]}"
        done = subprocess.run(
            [str(self.home / "start.sh"), "--db", self.database, "--port", str(port), "--fresh"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ODK Central did not start: {done.stderr[-500:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        self.pid = info["pid"]
        super().__init__(info["url"], info["email"], info["password"])

    def plain_loop(self, project: int, form_id: str, page: int = 100) -> int:
        """The baseline: the same OData pages, then each submission's XML, no storing."""
        base = f"/v1/projects/{project}/forms/{form_id}"
        fetched, skip = 0, 0
        while True:
            rows = self.call(
                "GET",
                f"{base}.svc/Submissions",
                params={
                    "$filter": "__system/submissionDate ge 2000-01-01T00:00:00.000Z",
                    "$orderby": "__system/submissionDate asc",
                    "$top": str(page),
                    "$skip": str(skip),
                    "$select": "__id,__system/submissionDate,__system/updatedAt,__system/edits",
                },
            ).json()["value"]
            for row in rows:
                self.call("GET", f"{base}/submissions/{quote(row['__id'], safe='')}.xml")
                fetched += 1
            skip += len(rows)
            if len(rows) < page:
                return fetched

    def close(self) -> None:
        subprocess.run([str(self.home / "stop.sh"), str(self.pid)], check=False, timeout=30)
        for statement in (
            f"drop database if exists {self.database} with (force)",
            f"drop role if exists {self.database}",
        ):
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", "test", "-c", statement],
                check=False,
                capture_output=True,
            )
