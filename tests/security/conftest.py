"""Shared by the hostile-input and fault tests: the figures.

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

# Re-exported for tests/security/test_hostile_hooks.py until it imports it from hostile_data.
from tests.security.hostile_data import HOSTILE  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
FIGURES_DIR = ROOT / "test-artifacts" / "security"


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
