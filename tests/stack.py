"""The real processes of a deployment, started from the Procfile's own lines.

Each process runs its Procfile command as honcho runs it (through the shell,
in its own session; scripts/procfile.py), so the e2e and fault tests test
what `make run` and a platform run. Output goes to one log file per process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import requests

from scripts import procfile, proctree
from tests.helpers import wait_until

SERVICES = ("web", "worker", "scheduler")  # what the tests run: the Procfile's long-running lines


class Stack:
    """Procfile processes sharing one environment (`env`, with PORT for `web`).

    `procfile_path`: another Procfile than the deployed one (Procfile.one-dyno).
    """

    def __init__(
        self, env: dict[str, str], log_dir: Path, procfile_path: Path = procfile.PROCFILE
    ) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procfile_path = procfile_path
        self.port = int(env["PORT"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open by the child)
        self.processes[name] = procfile.start(name, self.env, self.procfile_path, stdout=log)
        log.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process's whole session (the shell and what it started), then reap it."""
        self._signal(name, sig)
        self._reap(self.processes.pop(name))

    def _signal(self, name: str, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, sig)

    @staticmethod
    def _reap(process: subprocess.Popen, timeout: float = 15) -> None:
        """Wait for `process`; whatever of its group is still there then is killed.

        A test never leaves a process behind, even one that ignores its stop
        signal (that is a bug its own test must catch, not the next test).
        """
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)

    def healthy(self) -> bool:
        try:
            return requests.get(self.base_url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start_all(self, *names: str) -> Stack:
        """Start `names` (default: web, worker, scheduler); return once /healthz answers 200."""
        for name in names or SERVICES:
            self.start(name)
        wait_until(self.healthy, 30, "the web process", self.logs)
        return self

    def stop_all(self) -> None:
        """SIGTERM to every process at once, then reap each (see `_reap`).

        Then SIGKILL to anything their process trees held that is still
        there: processes that run in sessions of their own (onedyno.py's).
        """
        names = list(self.processes)
        trees = [pid for name in names for pid in proctree.tree(self.processes[name].pid)]
        for name in names:
            self._signal(name, signal.SIGTERM)
        for name in names:
            self._reap(self.processes.pop(name))
        for pid in trees:
            if proctree.alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )
