"""The real processes, as the Procfile runs them: gunicorn, worker.py, the scheduler.

Each e2e test gets its own Redis server (so it can be stopped and started)
and the test databases of tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from scripts.procfile import web_command
from tests.conftest import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Stack:
    """web + worker + scheduler processes sharing one environment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = int(env["PORT"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def command(self, name: str) -> list[str]:
        return {
            "web": web_command(self.port, env=self.env),
            "worker": [sys.executable, str(ROOT / "worker.py")],
            "scheduler": [str(BIN / "flask"), "--app", "webapp", "scheduler"],
        }[name]

    def start(self, name: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open by the child)
        self.processes[name] = subprocess.Popen(
            self.command(name),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(15)

    def start_all(self) -> Stack:
        for name in ("web", "worker", "scheduler"):
            self.start(name)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("web did not start:\n" + self.logs())
            time.sleep(0.1)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


@pytest.fixture
def stack_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def stack_env(app_env, stack_redis, tmp_path):
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
    """Start the processes (after `app` emptied the database)."""
    running = Stack(stack_env, tmp_path)
    yield running
    running.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(running.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
