"""deploy/debian's files agree with the app and the Procfile (the running layout: tests/e2e).

No process is started here but the runner on a copy, and systemd-analyze
(installed with Debian's systemd, which need not be running).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import procfile
from scripts.debian_layout import APP_DIR, DEPLOY
from tests.stack import SERVICES
from webapp.config import load_config

NGINX_SITE = (DEPLOY / "nginx" / "formhooks.conf").read_text()
SIZES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def nginx_value(name: str) -> str:
    [value] = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_SITE, re.MULTILINE)
    return value


def test_nginx_takes_the_bodies_the_app_takes(tmp_path):
    defaults = load_config({}, str(tmp_path))
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", nginx_value("client_max_body_size")).groups()
    assert int(number) * SIZES[unit] == defaults["MAX_SUBMISSION_BYTES"]
    assert nginx_value("client_body_timeout") == f"{defaults['BODY_READ_TIMEOUT']:.0f}s"
    assert nginx_value("proxy_request_buffering") == "on"
    assert nginx_value("proxy_buffering") == "on"


def test_nginx_sets_every_forwarded_header_the_app_trusts():
    headers = dict(re.findall(r"proxy_set_header\s+(\S+)\s+([^;]+);", NGINX_SITE))
    assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Forwarded-Host"] == "$host"
    assert headers["X-Forwarded-Port"] == "$server_port"
    assert headers["X-Forwarded-Prefix"] == '""'  # a client's own is dropped


def test_supervisor_and_systemd_run_every_procfile_process():
    programs = configparser.ConfigParser(interpolation=None)
    programs.read_string((DEPLOY / "supervisor" / "formhooks.conf").read_text())
    commands = {
        section.removeprefix("program:formhooks-"): programs[section]["command"]
        for section in programs.sections()
        if section.startswith("program:")
    }
    assert commands == {name: f"{APP_DIR}/deploy/debian/run {name}" for name in SERVICES}
    assert set(procfile.processes()) == {*SERVICES, procfile.RELEASE}
    for name in commands:
        section = programs[f"program:formhooks-{name}"]
        assert (section["stopasgroup"], section["killasgroup"]) == ("true", "true")
    target = (DEPLOY / "systemd" / "formhooks.target").read_text()
    assert f"Wants={' '.join(f'formhooks@{name}.service' for name in SERVICES)}" in target
    release = (DEPLOY / "systemd" / "formhooks-release.service").read_text()
    assert f"ExecStart={APP_DIR}/deploy/debian/run release" in release


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is missing")
def test_the_systemd_units_verify(tmp_path):
    """systemd's own checker, on the units with this checkout in place of /srv/formhooks/app."""
    units = []
    for unit in (DEPLOY / "systemd").iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(APP_DIR, str(procfile.ROOT)))
        units.append(f"./{unit.name}".replace("@.", "@web."))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def runner_copy(tmp_path: Path, procfile_text: str) -> Path:
    """deploy/debian/run in a checkout of its own, with this Procfile."""
    (tmp_path / "deploy" / "debian").mkdir(parents=True)
    shutil.copy2(DEPLOY / "run", tmp_path / "deploy" / "debian" / "run")
    (tmp_path / "Procfile").write_text(procfile_text)
    return tmp_path / "deploy" / "debian" / "run"


def run(runner: Path, name: str, env_file: Path, venv: Path, *args: str):
    return subprocess.run(
        [str(runner), name, *args],
        env={
            "PATH": "/usr/bin:/bin",
            "FORMHOOKS_ENV_FILE": str(env_file),
            "FORMHOOKS_VENV": str(venv),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_runner_execs_the_procfile_line_with_the_env_file(tmp_path):
    runner = runner_copy(
        tmp_path,
        'web: echo "$WEB_HOST:$PORT ${WEB_CONCURRENCY:-2}" "$(pwd)" "$(command -v fh-tool)"\n'
        "probe: printf '%s' \"$SECRET\"\n",
    )
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "fh-tool").write_text("#!/bin/sh\n")
    (venv / "bin" / "fh-tool").chmod(0o755)
    env_file = tmp_path / "env"
    env_file.write_text("WEB_HOST=127.0.0.1\nPORT=8000\nSECRET='a b $c'\n")
    web = run(runner, "web", env_file, venv)
    assert web.returncode == 0, web.stderr
    assert web.stdout.split() == [
        "127.0.0.1:8000",
        "2",
        str(tmp_path),  # the checkout: two folders up from the runner
        str(venv / "bin" / "fh-tool"),
    ]
    assert run(runner, "probe", env_file, venv).stdout == "a b $c"  # sh quoting, kept as is
    # A one-off command, as `heroku run` gives one.
    one_off = run(runner, "--", env_file, venv, "sh", "-c", 'echo "$PORT" "$1"', "sh", "x y")
    assert one_off.stdout == "8000 x y\n"


def test_the_runner_refuses_what_it_cannot_run(tmp_path):
    runner = runner_copy(tmp_path, "web: true\n")
    env_file = tmp_path / "env"
    env_file.write_text("")
    missing = run(runner, "web", tmp_path / "nowhere", tmp_path)
    assert missing.returncode == 78 and "cannot read the settings file" in missing.stderr
    unknown = run(runner, "worker", env_file, tmp_path)
    assert unknown.returncode == 64 and "no 'worker' line" in unknown.stderr
    assert run(runner, "--", env_file, tmp_path).returncode == 64  # no command
    for bad in ("", "web;reboot", "../web"):
        refused = run(runner, bad, env_file, tmp_path)
        assert refused.returncode == 64 and "usage:" in refused.stderr


def test_the_example_env_file_starts_in_production_once_its_keys_are_set(tmp_path):
    text = (DEPLOY / "env.example").read_text()
    text = re.sub(r"(?m)^(SECRET_KEY|ENCRYPTION_KEY)=change-me$", r"\1=" + "0f" * 32, text)
    (tmp_path / "env").write_text(text)
    exported = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; env -0', "sh", str(tmp_path / "env")],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    ).stdout
    env = dict(item.split("=", 1) for item in exported.decode().split("\0") if "=" in item)
    config = load_config(env, str(tmp_path))
    assert config["FORMHOOKS_ENV"] == "production"
    assert config["TRUSTED_PROXIES"] == 1
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg:///formhooks"
    assert (env["WEB_HOST"], env["PORT"]) == ("127.0.0.1", "8000")
    assert "proxy_pass http://127.0.0.1:8000;" in NGINX_SITE
