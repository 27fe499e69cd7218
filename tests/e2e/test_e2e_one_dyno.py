"""One-dyno mode end to end: `Procfile.one-dyno` against PostgreSQL and Redis over TLS.

Its `release` line migrates, its `web` line (onedyno.py) runs gunicorn, the
delivery worker and the scheduler with the one-dyno defaults; Redis is
Debian's redis-server with TLS only and a self-signed certificate, as
managed add-ons give (REDIS_SSL_CERT_REQS=none). A submission is delivered
to a real HTTP endpoint, its retry moved to the queue by the scheduler
process; SIGTERM stops every process; a killed child is started again.
"""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
import requests

from scripts import procfile, proctree
from tests.helpers import fixture_bytes, load_logs, nothing_left_to_send, wait_until
from tests.stack import Stack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True),
]


@pytest.fixture
def app_env(app_env, tls_redis):
    """The test's own app (rows, checks) on the same TLS Redis as the processes."""
    app_env.update(REDIS_URL=tls_redis.url, REDIS_SSL_CERT_REQS="none")
    return app_env


@pytest.fixture
def one_dyno(stack_env, app, tls_redis, tmp_path, request):
    """Procfile.one-dyno's processes, not started yet; whatever is left is killed after."""
    env = {**stack_env, "REDIS_URL": tls_redis.url, "REDIS_SSL_CERT_REQS": "none"}
    env["RETRY_DELAYS"] = "1,1,1"
    for name in ("WEB_CONCURRENCY", "WORKER_CONCURRENCY"):  # the one-dyno defaults
        env.pop(name, None)
    stack = Stack(env, tmp_path, procfile.ONE_DYNO)
    yield stack
    stack.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(stack.logs())


def boot(stack: Stack) -> int:
    """Run the release line, start the web line; returns onedyno.py's pid once all is up."""
    release = procfile.start("release", stack.env, procfile.ONE_DYNO)  # output: a pipe
    output = release.communicate(timeout=60)[0].decode()
    assert release.returncode == 0, output
    stack.start_all("web")
    supervisor = proctree.under_shell(stack.processes["web"].pid)
    wait_until(lambda: len(children(supervisor)) == 3, 30, "the three children", stack.logs)
    wait_until(lambda: "Listening on formhooks" in full_log(stack), 30, "the worker", stack.logs)
    return supervisor


def children(supervisor: int) -> dict[str, int]:
    """{'web': pid, 'worker': pid, 'scheduler': pid}: the commands the supervisor runs.

    Each leads a process group of its own; the supervisor's other children
    are orphans it collects (the processes of a command that was killed).
    """
    found = {}
    for pid in proctree.children(supervisor):
        line = proctree.command_line(pid)
        name = "web" if "gunicorn" in line else "worker" if "worker.py" in line else "scheduler"
        with contextlib.suppress(ProcessLookupError):
            if proctree.alive(pid) and os.getpgid(pid) == pid:
                found[name] = pid
    return found


def full_log(stack: Stack) -> str:
    """Everything the processes wrote (one file: onedyno.py's children share its output)."""
    return (stack.log_dir / "web.log").read_text(errors="replace")


def post(stack: Stack, form_uid: str, token: str) -> None:
    response = requests.post(
        f"{stack.base_url}/api/v1/forms/{form_uid}/submissions",
        data=fixture_bytes("nested.json"),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def test_delivers_with_a_retry_through_the_scheduler_then_sigterm_stops_everything(
    app, make, one_dyno, endpoint
):
    endpoint.statuses = [503, 200]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    supervisor = boot(one_dyno)
    running = children(supervisor)
    assert len(proctree.children(running["worker"])) == 1  # WORKER_CONCURRENCY=1
    gunicorn_workers = [
        pid for pid in proctree.children(running["web"]) if "gunicorn" in proctree.command_line(pid)
    ]
    assert len(gunicorn_workers) == 1  # WEB_CONCURRENCY=1

    post(one_dyno, form_uid, token)
    endpoint.wait_for(2, timeout=30)
    wait_until(lambda: load_logs(app)[0].status == "success", what="success", logs=one_dyno.logs)
    [row] = load_logs(app)
    assert (row.tries, [a.outcome for a in row.attempts]) == (2, ["failure", "success"])
    assert [r["body"] for r in endpoint.requests] == [fixture_bytes("nested.json")] * 2
    assert nothing_left_to_send(app) == {}

    everything = proctree.tree(supervisor)
    assert len(everything) >= 6  # onedyno, gunicorn and its worker, worker.py and its RQ, ...
    os.kill(supervisor, signal.SIGTERM)
    assert one_dyno.processes["web"].wait(30) == 0  # the shell, with onedyno.py's exit code
    assert [pid for pid in everything if proctree.alive(pid)] == []
    logs = full_log(one_dyno)
    assert "warm shut down requested" in logs  # the RQ worker stopped as it does on its own
    assert "Shutting down: Master" in logs  # gunicorn
    assert "Shutting down the scheduler" in logs
    assert "onedyno INFO Stopped" in logs and "killing" not in logs


def test_killed_children_are_started_again(app, make, one_dyno, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    supervisor = boot(one_dyno)
    before = children(supervisor)
    rq_process = proctree.children(before["worker"])[0]
    os.kill(before["worker"], signal.SIGKILL)  # worker.py, not the RQ process it started
    os.kill(before["web"], signal.SIGKILL)  # gunicorn's master, not its worker
    wait_until(
        lambda: (
            (now := children(supervisor)).keys() == before.keys()
            and now["worker"] != before["worker"]
            and now["web"] != before["web"]
        ),
        30,
        "worker and web to be started again",
        one_dyno.logs,
    )
    assert not proctree.alive(rq_process)  # the orphan was stopped, not left to work on
    assert children(supervisor)["scheduler"] == before["scheduler"]
    wait_until(one_dyno.healthy, 30, "the web server", one_dyno.logs)
    restarted = lambda: full_log(one_dyno).split("Restarting worker")[-1]  # noqa: E731
    wait_until(lambda: "Listening on formhooks" in restarted(), 30, "the new RQ worker")
    post(one_dyno, form_uid, token)
    endpoint.wait_for(1, timeout=30)
    wait_until(lambda: load_logs(app)[0].status == "success", what="success", logs=one_dyno.logs)
    logs = full_log(one_dyno)
    assert "onedyno WARNING worker exited with signal SIGKILL" in logs
    assert "onedyno WARNING web exited with signal SIGKILL" in logs
    assert "onedyno WARNING Restarting worker in 1 s" in logs
