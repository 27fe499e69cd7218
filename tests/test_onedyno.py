"""onedyno.py, the supervisor of one-dyno mode, with small real commands for children.

Each supervisor runs in a process of its own (it takes over signals and
collects every exited child), with short timings; the end-to-end test with
the real web, worker and scheduler is tests/e2e/test_e2e_one_dyno.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import onedyno
from scripts import procfile, proctree
from tests.helpers import ROOT, wait_until

FAST = {"first_delay": 0.05, "max_delay": 0.2, "stable_after": 5, "stop_timeout": 1}
IGNORES_SIGTERM = (
    "python -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'"
)
# A command that leaves a process of its group behind when it dies (as worker.py's
# RQ processes would stay if worker.py were killed), and writes its pid down.
WITH_HELPER = (
    "python -c 'import subprocess, sys, time;"
    ' helper = subprocess.Popen(["sleep", "60"]);'
    ' open(sys.argv[1], "a").write(str(helper.pid) + "\\n"); time.sleep(60)\' {path}'
)


def supervise(children: dict[str, str], tmp_path, **policy) -> subprocess.Popen:
    """onedyno.Supervisor in a process of its own; its log goes to tmp_path/log."""
    driver = textwrap.dedent(
        """
        import json, logging, os, sys
        import onedyno
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        children, policy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
        sys.exit(onedyno.Supervisor(children, os.environ, onedyno.Policy(**policy)).run())
        """
    )
    with (tmp_path / "log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", driver, json.dumps(children), json.dumps({**FAST, **policy})],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def started(supervisor: subprocess.Popen, count: int) -> list[int]:
    wait_until(lambda: len(proctree.children(supervisor.pid)) == count, 10, "the children")
    return proctree.children(supervisor.pid)


def ignores_sigterm(pid: int) -> bool:
    status = (proctree.PROC / str(pid) / "status").read_text()
    ignored = int(
        next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16
    )
    return bool(ignored & (1 << (signal.SIGTERM - 1)))


def stop(supervisor: subprocess.Popen) -> int:
    supervisor.send_signal(signal.SIGTERM)
    return supervisor.wait(10)


def test_the_children_are_the_procfiles_own_lines():
    assert {name: procfile.process_line(name) for name in onedyno.CHILDREN} == onedyno.CHILDREN
    assert set(onedyno.CHILDREN) == set(procfile.processes()) - {procfile.RELEASE}
    one_dyno = procfile.processes(procfile.ONE_DYNO)
    assert one_dyno == {
        "release": procfile.process_line("release"),  # the migrations, at every deploy
        "web": "python onedyno.py",  # the one process type that gets HTTP traffic
    }


def test_one_dyno_defaults_apply_only_when_unset():
    env = onedyno.child_env({"PATH": "/usr/bin", "WORKER_CONCURRENCY": ""})
    assert (env["WEB_CONCURRENCY"], env["WORKER_CONCURRENCY"]) == ("1", "1")
    assert env["PATH"] == f"{os.path.dirname(sys.executable)}{os.pathsep}/usr/bin"
    mine = onedyno.child_env({"WEB_CONCURRENCY": "2", "WORKER_CONCURRENCY": "3"})
    assert (mine["WEB_CONCURRENCY"], mine["WORKER_CONCURRENCY"]) == ("2", "3")


def test_sigterm_stops_every_child_and_kills_one_that_ignores_it(tmp_path):
    supervisor = supervise({"calm": "sleep 60", "stubborn": IGNORES_SIGTERM}, tmp_path)
    children = started(supervisor, 2)
    wait_until(lambda: any(map(ignores_sigterm, children)), 10, "SIGTERM to be ignored")
    for pid in children:
        assert os.getpgid(pid) == pid  # each in a process group of its own
    assert stop(supervisor) == 0
    assert not [pid for pid in children if proctree.alive(pid)]
    log = (tmp_path / "log").read_text()
    assert "Still running after 1 s: stubborn; killing" in log
    assert log.rstrip().endswith("Stopped")


def test_a_child_that_dies_is_restarted_after_its_leftovers_are_stopped(tmp_path):
    helpers = tmp_path / "helpers"
    supervisor = supervise(
        {"calm": "sleep 60", "leaky": WITH_HELPER.format(path=helpers)}, tmp_path
    )
    try:
        started(supervisor, 2)
        wait_until(helpers.exists, 10, "the helper")
        leaky = next(
            pid
            for pid in proctree.children(supervisor.pid)
            if "helper" in proctree.command_line(pid)
        )
        os.kill(leaky, signal.SIGKILL)
        wait_until(
            lambda: len(helpers.read_text().split()) == 2, 10, "a restart", helpers.read_text
        )
        first_helper, second_helper = map(int, helpers.read_text().split())
        assert not proctree.alive(first_helper)  # the dead command's leftover was stopped
        assert proctree.alive(second_helper)
        log = (tmp_path / "log").read_text()
        assert "leaky exited with signal SIGKILL" in log
        assert "Restarting leaky in 0.05 s" in log
    finally:
        assert stop(supervisor) == 0
    assert not proctree.alive(second_helper)
    assert "Still running" not in (tmp_path / "log").read_text()  # its helper got SIGTERM too


def test_a_child_that_keeps_failing_makes_it_exit_1_and_stop_the_others(tmp_path):
    supervisor = supervise({"calm": "sleep 60", "broken": "false"}, tmp_path, give_up_after=3)
    assert supervisor.wait(10) == 1
    log = (tmp_path / "log").read_text()
    calm = int(log.split("Started calm (pid ", 1)[1].split(")", 1)[0])
    assert not proctree.alive(calm)
    assert log.count("broken exited with code 1") == 3
    assert [line for line in log.splitlines() if line.startswith("Restarting")] == [
        "Restarting broken in 0.05 s",
        "Restarting broken in 0.1 s",
    ]
    assert "broken exited 3 times in a row within 5 s of starting; giving up" in log


def test_the_one_dyno_manifest_scales_only_what_procfile_one_dyno_runs():
    """Dokku fails a deploy whose app.json scales a process type its Procfile lacks.

    ("worker is not a valid process name to scale up"): with Procfile.one-dyno,
    Dokku reads app.one-dyno.json instead (docs/deploy.md, "One dyno").
    """
    manifest = json.loads((ROOT / "app.one-dyno.json").read_text())
    one_dyno = set(procfile.processes(procfile.ONE_DYNO)) - {procfile.RELEASE}
    assert set(manifest["formation"]) == one_dyno == {"web"}
    assert manifest["formation"]["web"]["quantity"] == 1
