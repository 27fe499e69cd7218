"""The receiver snippets of docs/signatures.md, run as written against real deliveries.

Each snippet marked `<!-- tested: NAME -->` in the page is taken from the page
itself and run on captured sends (made by a real worker): one during a
rotation's overlap, checked with the new and the old secret, and the same
with a byte of the body changed, which must fail. Node's snippets need
`node` (and npm, once, for the `standardwebhooks` package pinned in
receivers/package-lock.json), PHP's needs `php`: each is skipped, with the
reason, where its tool is missing.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.helpers import LOOPBACK_HOOKS, ROOT, run_worker
from webapp.extensions import db
from webapp.models import Hook

DOC = ROOT / "docs" / "signatures.md"
RECEIVERS = Path(__file__).parent / "receivers"


def snippet(name: str) -> str:
    """The fenced code block that follows `<!-- tested: name -->` in docs/signatures.md."""
    match = re.search(
        rf"<!-- tested: {re.escape(name)} -->\n```\w+\n(.*?)\n```", DOC.read_text(), re.S
    )
    assert match, f"no snippet {name!r} in {DOC}"
    return match.group(1)


pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


@pytest.fixture
def cases(app, client, make, endpoint) -> list[dict]:
    """[{secret, headers (lower-case names), body (base64), expected}] from real sends."""
    form_uid, token = make.form()
    json_hook = make.hook(form_uid, endpoint=endpoint.url)
    xml_hook = make.hook(form_uid, endpoint=endpoint.url + "?xml", export_type="xml", name="X")
    with app.app_context():
        hooks = {hook.uid: hook for hook in db.session.scalars(select(Hook))}
        old = hooks[json_hook].signing_secret
        new = hooks[json_hook].rotate_signing_secret()
        xml_secret = hooks[xml_hook].signing_secret
        db.session.commit()
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json={"name": "Ama Owusu", "town": "Kumasi é", "meta": {"instanceID": "uuid:r1"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    run_worker(app)
    received = {r["path"]: r for r in endpoint.wait_for(2)}
    made = []
    for path, secrets in (("/hook", (new, old)), ("/hook?xml", (xml_secret,))):
        sent = received[path]
        headers = {name.lower(): value for name, value in sent["headers"].items()}
        tampered = sent["body"].replace(b"Ama", b"Amy")
        for secret in secrets:
            made.append(case(secret, headers, sent["body"], True))
            made.append(case(secret, headers, tampered, False))
    made.append(case("whsec_" + base64.b64encode(b"k" * 32).decode(), headers, sent["body"], False))
    return made


def case(secret: str, headers: dict, body: bytes, expected: bool) -> dict:
    return {
        "secret": secret,
        "headers": headers,
        "body": base64.b64encode(body).decode(),
        "expected": expected,
    }


def run_cases(command: list[str], cases: list[dict], cwd: Path | None = None) -> None:
    done = subprocess.run(
        command,
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [c["expected"] for c in cases]


def test_the_python_snippet(cases):
    namespace: dict = {}
    exec(snippet("python"), namespace)  # noqa: S102 (the documentation's own code)
    verify = namespace["verify"]
    results = [verify(c["secret"], c["headers"], base64.b64decode(c["body"])) for c in cases]
    assert results == [c["expected"] for c in cases]


NODE_HARNESS = """
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const results = input.map((c) => verify(c.secret, c.headers, Buffer.from(c.body, "base64")));
console.log(JSON.stringify(results));
"""


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the Node snippets are not run")
    return path


@pytest.fixture(scope="session")
def node_packages(tmp_path_factory) -> Path:
    """The pinned `standardwebhooks` npm package, installed once per test session."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node or npm is not installed: the standardwebhooks Node snippet is not run")
    folder = tmp_path_factory.mktemp("receivers")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(RECEIVERS / name, folder / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"npm ci failed (no npm registry?): {done.stderr.strip()[-500:]}")
    return folder


def test_the_node_snippet_with_the_standardwebhooks_package(cases, node_packages):
    script = node_packages / "verify.js"
    script.write_text(snippet("node-standardwebhooks") + NODE_HARNESS)
    run_cases([node(), str(script)], cases, cwd=node_packages)


def test_the_plain_node_snippet(cases, tmp_path):
    script = tmp_path / "verify.js"
    script.write_text(snippet("node-plain") + NODE_HARNESS)
    run_cases([node(), str(script)], cases)


PHP_HARNESS = """
$input = json_decode(file_get_contents('php://stdin'), true);
$results = array_map(
    fn ($c) => formhooks_verify($c['secret'], $c['headers'], base64_decode($c['body'])),
    $input
);
echo json_encode($results);
"""


def test_the_php_snippet(cases, tmp_path):
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed: the PHP snippet is not run")
    script = tmp_path / "verify.php"
    script.write_text(snippet("php") + "\n" + PHP_HARNESS)
    run_cases([php, str(script)], cases)
