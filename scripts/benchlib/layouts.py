"""The ways to deploy Formhooks that `make bench`'s `layouts` section measures side by side.

Each `Layout` starts its processes from the files a platform or a server
reads (the Procfile, Procfile.one-dyno, deploy/debian's nginx site and
supervisor programs) with the settings it would give; the section
(scripts/bench.py, `layouts`) measures the memory of their processes at
idle and under load, and their CPU use at idle, by unit and in all.

To measure another layout, add a `Layout` to `LAYOUTS`: its `start(env,
port)` starts the processes, serving on `port`, and returns a `Running`
(its units' processes, a way to stop them); the bench stops it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from scripts import debian_layout, procfile, proctree

DYNO_MB = 512  # the smallest paid dyno (Heroku basic, Render starter)


class Running(Protocol):
    """A started layout, as the bench sees it."""

    base_url: str  # where it serves: http://127.0.0.1:PORT, https://localhost:PORT
    verify: bool | str  # for requests: True, or the certificate of a self-signed https

    @property
    def units(self) -> Iterable[str]: ...  # web, worker, ...: a dyno, a program, a server

    def pids(self, unit: str | None = None) -> list[int]: ...  # each process in one unit only

    def stop(self) -> None: ...


@dataclass
class Started:
    """Procfile processes, running: unit name -> the process whose tree is that unit."""

    base_url: str
    units: dict[str, subprocess.Popen] = field(default_factory=dict)
    verify: bool | str = True

    def pids(self, unit: str | None = None) -> list[int]:
        """Every process of `unit` (default: of all units); `sh -c` wrappers left out."""
        names = [unit] if unit else list(self.units)
        return [
            pid
            for name in names
            for pid in proctree.tree(proctree.under_shell(self.units[name].pid))
        ]

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to each unit's top process, SIGKILL to anything left after `timeout`."""
        everything = self.pids()
        for process in self.units.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proctree.under_shell(process.pid), signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(proctree.alive(pid) for pid in everything) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in everything:
            if proctree.alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for process in self.units.values():
            process.wait(10)


class DebianStarted:
    """The Debian layout (scripts/debian_layout.py) running in a temporary directory.

    Its units: nginx, supervisord, web, worker, scheduler. The env file gets
    the settings the bench gives (not the environment the bench inherited),
    as /etc/formhooks/env would; the database is the bench's, migrated.
    """

    def __init__(self, env: dict[str, str], port: int) -> None:
        settings = {name: value for name, value in env.items() if os.environ.get(name) != value}
        self.directory = Path(tempfile.mkdtemp(prefix="fh-debian-"))
        self.layout = debian_layout.DebianLayout(self.directory, settings, https_port=port)
        try:
            self.layout.write_files()
            self.layout.start()
            self.layout.wait_ready()
        except BaseException:
            self.stop()
            raise
        self.base_url = self.layout.url("")
        self.verify = str(self.layout.cert)

    @property
    def units(self) -> list[str]:
        return list(self.layout.roles())

    def pids(self, unit: str | None = None) -> list[int]:
        return self.layout.pids(unit)

    def stop(self) -> None:
        """supervisord stops its programs, nginx quits; anything left is killed; files removed."""
        self.layout.stop()
        self.layout.kill_leftovers()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    budget: str  # what must fit in DYNO_MB: "each unit" (one dyno each) or "all units"
    start: Callable[[dict[str, str], int], Running]
    settings: dict[str, str] = field(default_factory=dict)  # laid over the bench's environment
    unavailable: Callable[[], str | None] = lambda: None  # why it cannot run here, or None


def _procfile_units(path, names: tuple[str, ...]) -> Callable[[dict[str, str], int], Started]:
    def start(env: dict[str, str], port: int) -> Started:
        env = {**env, "PORT": str(port)}
        started = Started(f"http://127.0.0.1:{port}")
        for name in names:
            started.units[name] = procfile.start(
                name, env, path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        return started

    return start


LAYOUTS = [
    Layout(
        name="procfile",
        title="Procfile: web, worker and scheduler, one dyno each",
        budget="each unit",
        start=_procfile_units(procfile.PROCFILE, ("web", "worker", "scheduler")),
    ),
    Layout(
        name="one-dyno",
        title="Procfile.one-dyno: onedyno.py runs all three in one dyno",
        budget="all units",
        start=_procfile_units(procfile.ONE_DYNO, ("web",)),
    ),
    Layout(
        name="one-dyno, WEB_CONCURRENCY=2",
        title="Procfile.one-dyno with 2 web processes (Heroku's Python buildpack sets 2"
        " on a 512 MB dyno unless WEB_CONCURRENCY is set)",
        budget="all units",
        start=_procfile_units(procfile.ONE_DYNO, ("web",)),
        settings={"WEB_CONCURRENCY": "2"},
    ),
    Layout(
        name="debian",
        title="A Debian server: nginx (TLS) in front, supervisor running web, worker and"
        " scheduler (deploy/debian, env.example's 2 web processes, 1 worker process)",
        budget="all units",
        start=DebianStarted,
        settings={"WEB_CONCURRENCY": "2", "WORKER_CONCURRENCY": "1"},
        unavailable=debian_layout.unavailable,
    ),
]
