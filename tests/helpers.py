"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    """A sample submission, as bytes (copied from shared/fixtures)."""
    return (FIXTURES / name).read_bytes()
