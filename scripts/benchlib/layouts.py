"""The ways to deploy Formhooks that `make bench`'s `layouts` section measures side by side.

Each `Layout` starts its processes from the files a platform reads (the
Procfile, Procfile.one-dyno) with the settings the platform would give;
the section (scripts/bench.py, `layouts`) measures the memory of their
process trees at idle and under load, and their CPU use at idle.

To measure another layout (a Debian server with nginx and supervisor, ...),
add a `Layout` to `LAYOUTS`: its `start(env, port)` starts the processes,
serving HTTP on `port`, and returns them by unit; the bench stops them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scripts import procfile, proctree

DYNO_MB = 512  # the smallest paid dyno (Heroku basic, Render starter)


@dataclass
class Started:
    """A layout's running processes: unit name -> the process whose tree is that unit."""

    base_url: str
    units: dict[str, subprocess.Popen] = field(default_factory=dict)

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


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    budget: str  # what must fit in DYNO_MB: "each unit" (one dyno each) or "all units"
    start: Callable[[dict[str, str], int], Started]
    settings: dict[str, str] = field(default_factory=dict)  # laid over the bench's environment


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
]
