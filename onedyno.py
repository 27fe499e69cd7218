"""`Procfile.one-dyno`'s `web`: the web server, the delivery worker and the scheduler in one dyno.

For the smallest budgets: one 512 MB dyno instead of three (docs/deploy.md,
"One dyno", gives its memory and idle CPU, measured by `make bench`).

    python onedyno.py

It runs the Procfile's own `web`, `worker` and `scheduler` lines (`CHILDREN`;
tests/test_onedyno.py keeps them equal to the Procfile's), each through the
shell as a platform runs a Procfile line (`exec`, so that signals reach the
command itself), in a session and process group of its own, writing to this
process's stdout and stderr (the platform's log). Defaults for one small
dyno, used when the variable is unset: `WEB_CONCURRENCY=1`,
`WORKER_CONCURRENCY=1` (`DEFAULTS`).

- **SIGTERM or SIGINT**: SIGTERM to each child (gunicorn stops gracefully,
  the worker finishes the deliveries it is sending, the scheduler stops),
  then whatever is left of their process groups after `stop_timeout`
  (25 s: platforms kill at 30 s) gets SIGKILL; exit 0.
- **A child that exits on its own** (a crash, the OOM killer): what is left
  of its process group is stopped as above, then it is started again after
  1 s, 2 s, 4 s... (at most 30 s; back to 1 s once a child has run for
  60 s). After 5 exits in a row within 60 s of their start, everything is
  stopped and this process exits 1, so that the platform restarts the dyno
  and shows it crashed.

Only the standard library is imported here (not the app): this process
holds about 10 MB.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("formhooks.onedyno")

# The Procfile's lines, word for word (a test compares them).
CHILDREN = {
    "web": (
        "gunicorn --config python:webapp.server --bind ${WEB_HOST:-0.0.0.0}:$PORT"
        " --workers ${WEB_CONCURRENCY:-2} --worker-connections ${WEB_CONNECTIONS:-1000}"
        ' --access-logfile - "webapp:create_app()"'
    ),
    "worker": "python worker.py",
    "scheduler": "flask --app webapp scheduler",
}
# One gevent web process and one worker process fit a 512 MB dyno with room
# to spare (docs/deploy.md, "One dyno").
DEFAULTS = {"WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "1"}


@dataclass(frozen=True)
class Policy:
    """Restart and stop timings (tests shorten them)."""

    first_delay: float = 1.0  # seconds before the first restart; doubles with each quick exit
    max_delay: float = 30.0
    stable_after: float = 60.0  # a child that ran this long resets the count of quick exits
    give_up_after: int = 5  # quick exits in a row: stop everything, exit 1
    stop_timeout: float = 25.0  # from SIGTERM to SIGKILL


class Child:
    """One supervised command, in its own process group."""

    def __init__(self, name: str, command: str) -> None:
        self.name = name
        self.command = command
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.exited_at: float | None = None  # the command itself exited
        self.draining_since: float | None = None  # its group's leftovers were sent SIGTERM
        self.restart_at: float | None = None
        self.quick_exits = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {self.command}"],
            env=env,
            cwd=ROOT,
            start_new_session=True,  # its own process group: signalled and cleaned up as one
        )
        self.started = time.monotonic()
        self.exited_at = self.draining_since = self.restart_at = None
        log.info("Started %s (pid %d): %s", self.name, self.process.pid, self.command)

    @property
    def running(self) -> bool:
        return self.process is not None and self.exited_at is None

    def group_alive(self) -> bool:
        """Whether any process of this child's group is still there (the command or leftovers)."""
        if self.process is None:
            return False
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a process of the group that is not ours: still there
            return True
        return True

    def signal(self, sig: int) -> None:
        """`sig` to the command itself (it passes it on to its own processes)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)

    def signal_group(self, sig: int) -> None:
        """`sig` to every process of the group (leftovers of a command that has exited)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)


class Supervisor:
    """Starts `children` (name -> Procfile-style command), restarts them, stops them."""

    def __init__(
        self, children: Mapping[str, str], env: Mapping[str, str], policy: Policy | None = None
    ) -> None:
        self.children = [Child(name, command) for name, command in children.items()]
        self.env = dict(env)
        self.policy = policy or Policy()
        self.stop_signal: int | None = None

    def run(self) -> int:
        """Until SIGTERM/SIGINT (returns 0) or a child keeps failing (returns 1)."""
        become_subreaper()
        wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)  # a signal wakes the select() below at once
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)
        clean = False
        try:
            for child in self.children:
                child.start(self.env)
            code = 0
            while self.stop_signal is None:
                select.select([wakeup_read], [], [], self._timeout())
                with contextlib.suppress(BlockingIOError):
                    os.read(wakeup_read, 512)
                self._reap()
                if self.stop_signal is not None:
                    log.info("Stopping (signal %d)", self.stop_signal)
                    break
                if not self._tend():
                    code = 1
                    break
            self._stop_all(wakeup_read)
            clean = True
            return code
        finally:
            if not clean:  # an error above must not leave a child behind
                for child in self.children:
                    child.signal_group(signal.SIGKILL)
            signal.set_wakeup_fd(-1)
            os.close(wakeup_read)
            os.close(wakeup_write)

    def _on_signal(self, signum: int, _frame) -> None:
        if signum != signal.SIGCHLD and self.stop_signal is None:
            self.stop_signal = signum

    def _timeout(self) -> float | None:
        """How long to sleep: until the next restart is due, short while leftovers drain."""
        if any(child.draining_since is not None for child in self.children):
            return 0.1
        due = [child.restart_at for child in self.children if child.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _reap(self) -> None:
        """Collect every exited process: the commands, and their orphans (`become_subreaper`)."""
        by_pid = {child.pid: child for child in self.children if child.running}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = by_pid.get(pid)
            if child is not None:
                child.process.returncode = os.waitstatus_to_exitcode(status)
                child.exited_at = time.monotonic()

    def _tend(self) -> bool:
        """Move each exited child towards its restart. False: one keeps failing, give up."""
        now = time.monotonic()
        for child in self.children:
            if child.running or child.restart_at is not None:
                if child.restart_at is not None and now >= child.restart_at:
                    child.start(self.env)
                continue
            if child.draining_since is None:
                ran = child.exited_at - child.started
                log.warning(
                    "%s exited with %s after %.0f s",
                    child.name,
                    describe_exit(child.process.returncode),
                    ran,
                )
                child.quick_exits = child.quick_exits + 1 if ran < self.policy.stable_after else 1
                child.draining_since = now
                child.signal_group(signal.SIGTERM)  # its own processes, left behind
            if child.group_alive():
                if now - child.draining_since > self.policy.stop_timeout:
                    child.signal_group(signal.SIGKILL)
                continue
            child.draining_since = None
            if child.quick_exits >= self.policy.give_up_after:
                log.error(
                    "%s exited %d times in a row within %.0f s of starting; giving up",
                    child.name,
                    child.quick_exits,
                    self.policy.stable_after,
                )
                return False
            delay = min(
                self.policy.first_delay * 2 ** (child.quick_exits - 1), self.policy.max_delay
            )
            log.warning("Restarting %s in %g s", child.name, delay)
            child.restart_at = now + delay
        return True

    def _stop_all(self, wakeup_read: int) -> None:
        """SIGTERM to every child, SIGKILL to what is left after `stop_timeout`."""
        for child in self.children:
            child.restart_at = None
            child.signal(signal.SIGTERM)  # a running command passes it on to its processes
        deadline = time.monotonic() + self.policy.stop_timeout
        while True:
            self._reap()
            for child in self.children:
                if child.exited_at is not None and child.draining_since is None:
                    child.draining_since = time.monotonic()
                    child.signal_group(signal.SIGTERM)  # what the command left behind
            alive = [child for child in self.children if child.group_alive()]
            if not alive:
                log.info("Stopped")
                return
            if time.monotonic() > deadline:
                names = ", ".join(child.name for child in alive)
                log.warning(
                    "Still running after %.0f s: %s; killing", self.policy.stop_timeout, names
                )
                for child in alive:
                    child.signal_group(signal.SIGKILL)
                deadline = float("inf")  # SIGKILL cannot be refused: wait for the kernel
            select.select([wakeup_read], [], [], 0.1)
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup_read, 512)


def become_subreaper() -> None:
    """Orphaned processes of the children come to this process, which collects them at once.

    Then a process group whose processes have all exited is seen empty at
    once, not after its zombies wait for PID 1 (Linux's PR_SET_CHILD_SUBREAPER).
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the one-dyno defaults, and this interpreter's bin/ first on PATH."""
    merged = dict(env)
    for key, value in DEFAULTS.items():
        if not merged.get(key):
            merged[key] = value
    bin_dir = os.path.dirname(sys.executable)
    merged["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
    return merged


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s onedyno %(levelname)s %(message)s")
    return Supervisor(CHILDREN, child_env(os.environ)).run()


if __name__ == "__main__":
    sys.exit(main())
