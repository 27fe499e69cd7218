"""Shared by the hostile-input and fault tests: hypothesis settings and the figures.

Every test here counts what it tried (inputs sent, faults injected, submissions
lost, duplicate deliveries) in `figures`; each test process writes its counts
to test-artifacts/security/figures-<run>-<worker>.json when the session ends,
so a run's totals are the sum of its files (docs/security.md).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The real processes (web, worker, scheduler) of the e2e tests, for the fault tests.
from tests.e2e.conftest import stack, stack_env, stack_redis  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
FIGURES_DIR = ROOT / "test-artifacts" / "security"

# Deterministic in CI: the same examples every run, no example database on disk.
HOSTILE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app and form serve all examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)


class Figures:
    """Counters of what the tests tried, by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount


@pytest.fixture(scope="session")
def figures(worker_id):
    tally = Figures()
    yield tally
    if tally.counts:
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "single")[:12]
        FIGURES_DIR.mkdir(parents=True, exist_ok=True)
        path = FIGURES_DIR / f"figures-{run}-{worker_id}.json"
        path.write_text(json.dumps(dict(sorted(tally.counts.items())), indent=1) + "\n")
