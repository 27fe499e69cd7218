"""The scheduler process, as the Procfile runs it: a stop signal stops it, Redis up or down."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from redis import Redis

from tests.helpers import wait_until
from webapp.tasks.schedule import PERIODIC_PREFIX

pytestmark = pytest.mark.e2e


def _registered(redis_url: str) -> bool:
    client = Redis.from_url(redis_url)
    try:
        jobs = client.zrange("rq:scheduler:scheduled_jobs", 0, -1)
        return any(job.decode().startswith(PERIODIC_PREFIX) for job in jobs)
    finally:
        client.close()


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (it exited; nobody reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis up", "redis down"])
def test_sigterm_stops_the_scheduler(app, stack, stack_redis, redis_up):
    stack.start("scheduler")
    wait_until(lambda: _registered(stack_redis.url), 30, "the periodic jobs", stack.logs)
    shell = stack.processes["scheduler"].pid  # the Procfile line runs through the shell
    [scheduler] = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    if not redis_up:
        # rq-scheduler's own handler writes the scheduler's death to Redis
        # first: with Redis down that raised, and the retry loop went on.
        stack_redis.stop()
        wait_until(lambda: "Redis unreachable" in stack.logs(), 30, "the retry", stack.logs)
    os.killpg(shell, signal.SIGTERM)  # as platforms stop a process: its whole group
    wait_until(lambda: _gone(int(scheduler)), 10, "the scheduler to stop", stack.logs)
    logs = stack.logs()
    assert "Shutting down" in logs and "Traceback" not in logs, logs
