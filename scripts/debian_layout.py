"""The Debian server layout of docs/deploy.md, run on this machine from deploy/debian's files.

nginx (Debian's package) terminates TLS and buffers in front of gunicorn;
supervisord (Debian's `supervisor`) runs web, worker and scheduler through
deploy/debian/run, which execs the Procfile's lines with the env file's
settings. The shipped files are rendered for one directory, local ports and
the current user (`render` fails when a value it replaces is no longer in
the file, so the files tested are the files shipped). Production runs nginx
as Debian's own service; here it is a child of this process.

Used by tests/e2e/test_e2e_debian.py and by `make bench`'s `layouts`
section (scripts/benchlib/layouts.py), which measures each role's processes
(`roles()`, `pids()`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import requests
from redis import Redis

from scripts import proctree
from scripts.certs import write_self_signed
from scripts.procfile import BIN, ROOT

DEPLOY = ROOT / "deploy" / "debian"
NGINX = "/usr/sbin/nginx"
SUPERVISORD = "/usr/bin/supervisord"
APP_DIR = "/srv/formhooks/app"  # where docs/deploy.md puts the checkout
PROGRAMS = ("web", "worker", "scheduler")


def unavailable() -> str | None:
    """Why the layout cannot run here (a Debian package missing), or None."""
    for path, package in ((NGINX, "nginx"), (SUPERVISORD, "supervisor")):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install {package})"
    return None


def render(text: str, replacements: Mapping[str, str]) -> str:
    """`text` with each key replaced; ValueError if a key is not in it."""
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{old!r} is no longer in the file: update the rendering")
        text = text.replace(old, new)
    return text


class DebianLayout:
    """nginx and supervisord with their files under `directory`; `settings` go to the env file.

    Ports are chosen free on 127.0.0.1 (HTTPS on `https_port` if given); the
    certificate is made self-signed for localhost unless `cert` and `key`
    are given; the processes run from `venv` (default: the virtualenv
    running this code).
    """

    def __init__(
        self,
        directory: Path,
        settings: Mapping[str, str],
        *,
        cert: Path | None = None,
        key: Path | None = None,
        venv: Path | None = None,
        https_port: int | None = None,
    ) -> None:
        self.directory = directory
        self.venv = venv or BIN.parent  # by default this interpreter's virtualenv
        self.http_port, self.web_port = _free_port(), _free_port()
        self.https_port = https_port or _free_port()
        if cert is None or key is None:
            cert, key = write_self_signed(directory, name="nginx")
        self.cert, self.key = cert, key
        # Every process started from the env file carries it: how leftovers are found.
        self.mark = uuid.uuid4().hex
        self.settings = {
            **settings,
            "FORMHOOKS_ENV": "production",
            "WEB_HOST": "127.0.0.1",
            "PORT": str(self.web_port),
            "TRUSTED_PROXIES": "1",
            "FORMHOOKS_LAYOUT_MARK": self.mark,
        }
        self.env_file = directory / "env"
        self.nginx: subprocess.Popen | None = None
        self.supervisord: subprocess.Popen | None = None
        self._seen: dict[int, int | None] = {}  # pid -> start time, of every process seen running

    # Files

    def write_files(self) -> None:
        d = self.directory
        for sub in ("nginx-temp", "log"):
            (d / sub).mkdir(exist_ok=True)
        self.env_file.write_text(
            "".join(f"{name}='{value}'\n" for name, value in self.settings.items())
        )
        site = render(
            (DEPLOY / "nginx" / "formhooks.conf").read_text(),
            {
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                "listen [::]:80;": "",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
                "listen [::]:443 ssl http2;": "",
                "server_name formhooks.example.org;": "server_name localhost;",
                "/etc/letsencrypt/live/formhooks.example.org/fullchain.pem": str(self.cert),
                "/etc/letsencrypt/live/formhooks.example.org/privkey.pem": str(self.key),
                "root /var/www/html;": f"root {d / 'acme'};",
                "return 301 https://$host$request_uri;": (
                    f"return 301 https://$host:{self.https_port}$request_uri;"
                ),
                "proxy_pass http://127.0.0.1:8000;": f"proxy_pass http://127.0.0.1:{self.web_port};",
            },
        )
        (d / "formhooks-site.conf").write_text(site)
        temp = d / "nginx-temp"
        # Debian's /etc/nginx/nginx.conf, cut to what a site needs, with paths of our own.
        (d / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"""worker_processes auto;
pid {d / "nginx.pid"};
error_log {d / "log" / "nginx-error.log"};
daemon off;
events {{ worker_connections 768; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {d / "log" / "nginx-access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {d / "formhooks-site.conf"};
}}
"""
        )
        programs = render(
            (DEPLOY / "supervisor" / "formhooks.conf").read_text(),
            {
                f"{APP_DIR}/": f"{ROOT}/",
                f"directory={APP_DIR}\n": f"directory={ROOT}\n",
                "user=formhooks\n": "",
                'HOME="/srv/formhooks"': f'HOME="{d}"',
                'FORMHOOKS_ENV_FILE="/etc/formhooks/env"': (
                    f'FORMHOOKS_ENV_FILE="{self.env_file}",FORMHOOKS_VENV="{self.venv}"'
                ),
                "/var/log/supervisor/": f"{d / 'log'}/",
            },
        )
        (d / "formhooks-programs.conf").write_text(programs)
        # Debian's /etc/supervisor/supervisord.conf, with paths of our own.
        (d / "supervisord.conf").write_text(
            f"""[supervisord]
nodaemon=true
logfile={d / "log" / "supervisord.log"}
pidfile={d / "supervisord.pid"}
childlogdir={d / "log"}

[include]
files = {d / "formhooks-programs.conf"}
"""
        )

    # Processes

    def run(self, name: str) -> subprocess.CompletedProcess:
        """deploy/debian/run NAME in the foreground (`release`: the migrations)."""
        return subprocess.run(
            [str(DEPLOY / "run"), name],
            env=self._base_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _base_env(self) -> dict[str, str]:
        """What a system service starts with: nearly nothing; the env file gives the rest."""
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.directory),
            "LANG": "C.UTF-8",
            "FORMHOOKS_ENV_FILE": str(self.env_file),
            "FORMHOOKS_VENV": str(self.venv),
        }

    def start(self) -> None:
        """supervisord (web, worker, scheduler), then nginx; returns at once (see wait_ready)."""
        d = self.directory
        base = {k: v for k, v in self._base_env().items() if not k.startswith("FORMHOOKS_")}
        with open(d / "log" / "supervisord.err", "ab") as err:
            self.supervisord = subprocess.Popen(
                [SUPERVISORD, "-c", str(d / "supervisord.conf")],
                env=base,
                stdout=subprocess.DEVNULL,  # nodaemon: a copy of supervisord.log
                stderr=err,
                start_new_session=True,
            )
        with open(d / "log" / "nginx.out", "ab") as out:
            self.nginx = subprocess.Popen(
                [
                    NGINX,
                    "-p",
                    f"{d}/",
                    "-c",
                    str(d / "nginx.conf"),
                    "-e",
                    str(d / "log" / "nginx-error.log"),
                ],
                env=base,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self, path: str = "/", scheme: str = "https") -> str:
        port = self.https_port if scheme == "https" else self.http_port
        return f"{scheme}://localhost:{port}{path}"

    def wait_ready(self, timeout: float = 60) -> None:
        """Until /healthz answers 200 over HTTPS and the workers and the scheduler are alive."""
        from webapp.admin.status import queue_health

        workers = int(self.settings.get("WORKER_CONCURRENCY", "1"))
        redis = Redis.from_url(self.settings["REDIS_URL"])
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for process in (self.supervisord, self.nginx):
                    if process is not None and process.poll() is not None:
                        raise RuntimeError(f"{process.args[0]} stopped:\n{self.logs()}")
                health = queue_health(redis)
                if self._healthy() and len(health.workers) >= workers and health.scheduler_alive:
                    self._remember_processes()
                    return
                time.sleep(0.1)
        finally:
            redis.close()
        raise RuntimeError(f"the layout did not start in {timeout} s:\n{self.logs()}")

    def _healthy(self) -> bool:
        try:
            answer = requests.get(self.url("/healthz"), verify=str(self.cert), timeout=2)
        except requests.RequestException:
            return False
        return answer.status_code == 200

    def _remember_processes(self) -> None:
        for top in (self.nginx, self.supervisord):
            if top is not None:
                for pid in proctree.tree(top.pid):
                    self._seen[pid] = proctree.start_time(pid)

    def roles(self) -> dict[str, int]:
        """The top process of each role: nginx, supervisord and each of its programs."""
        if self.supervisord is None or self.nginx is None:
            return {}
        roles = {"nginx": self.nginx.pid, "supervisord": self.supervisord.pid}
        for pid in proctree.children(self.supervisord.pid):
            roles[_program_of(pid)] = pid
        return roles

    def pids(self, role: str | None = None) -> list[int]:
        """Every process of `role` (default: of all roles), each in one role only:
        supervisord's role is supervisord alone, its programs being roles of their own."""
        roles = self.roles()
        return [
            pid
            for name in ([role] if role else roles)
            for pid in proctree.tree(roles[name], stop=set(roles.values()) - {roles[name]})
        ]

    def stop(self) -> None:
        """supervisord stops its programs (SIGTERM, then SIGKILL after 60 s); nginx quits."""
        for process, sig in ((self.supervisord, signal.SIGTERM), (self.nginx, signal.SIGQUIT)):
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        for process in (self.supervisord, self.nginx):
            if process is None:
                continue
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def leftovers(self) -> list[int]:
        """Processes of this layout still running: any started from its env file, and
        nginx's and supervisord's own (nginx clears its environment)."""
        found = []
        for pid in proctree.running():
            started = proctree.start_time(pid)
            if started is None:  # gone, or exited and its parent not having reaped it yet
                continue
            if self.mark.encode() in proctree.environment(pid) or self._seen.get(pid) == started:
                found.append(pid)
        return sorted(found)

    def kill_leftovers(self) -> None:
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted((self.directory / "log").glob("*"))
            if path.is_file()
        )

    def __enter__(self) -> DebianLayout:
        self.write_files()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.kill_leftovers()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _program_of(pid: int) -> str:
    """The supervisor program a process runs: web, worker, scheduler (else its command)."""
    command = proctree.command_line(pid)
    for program, sign in (("web", "gunicorn"), ("worker", "worker.py"), ("scheduler", "scheduler")):
        if sign in command:
            return program
    return command
