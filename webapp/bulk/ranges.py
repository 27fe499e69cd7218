"""What a backfill or replay request asks for, checked: dates (UTC) and statuses.

The API and the panel give the same values (strings, or null for "not
given"); problems are webapp.validation Problems, worded at the edge.
`since` is inclusive; `until` is the exclusive end: a date alone means the
end of that day (the day is included), a date-time that very instant. Not
given, `since` means from the first submission (or delivery), `until` now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webapp.models import FAILED, SUCCESS
from webapp.validation import Problem, iso_moment

REPLAYABLE = (FAILED, SUCCESS)


@dataclass(frozen=True)
class Range:
    """A checked request: `since` (inclusive) to `until` (exclusive), aware UTC."""

    since: datetime | None
    until: datetime
    statuses: tuple[str, ...] = ()


def parse_backfill(values: Mapping[str, Any], now: datetime) -> tuple[Range | None, list[Problem]]:
    """`{"since", "until"}` -> a Range, or the problems (then None)."""
    return _parse(values, now, replay=False)


def parse_replay(values: Mapping[str, Any], now: datetime) -> tuple[Range | None, list[Problem]]:
    """`{"status", "since", "until"}` -> a Range, or the problems (then None).

    `status`: "failed", "success" or a list of them; not given: both.
    """
    return _parse(values, now, replay=True)


def _parse(values, now, *, replay: bool):
    known = {"since", "until", "status"} if replay else {"since", "until"}
    problems = [Problem(name, "field.unknown") for name in values if name not in known]
    since = _moment(values.get("since"), "since", problems, end=False)
    until = _moment(values.get("until"), "until", problems, end=True)
    statuses = _statuses(values.get("status"), problems) if replay else ()
    # Compared as given: a date `until` is that day's start (since may be that day).
    if since is not None and until is not None and since > iso_moment(values["until"]):
        problems.append(Problem("until", "range.reversed"))
    elif since is not None and until is None and since > now:
        problems.append(Problem("since", "since.future"))
    if problems:
        return None, problems
    return Range(since, until or now, statuses), []


def _moment(raw: Any, field: str, problems: list[Problem], *, end: bool) -> datetime | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        problems.append(Problem(field, "value.not_text"))
        return None
    try:
        return iso_moment(raw, end=end)
    except ValueError:
        problems.append(Problem(field, "moment.invalid", {"value": raw}))
        return None


def _statuses(raw: Any, problems: list[Problem]) -> tuple[str, ...]:
    if raw is None or raw == "" or raw == []:
        return REPLAYABLE
    chosen = [raw] if isinstance(raw, str) else raw
    if not isinstance(chosen, list) or not all(s in REPLAYABLE for s in chosen):
        problems.append(Problem("status", "statuses.choice"))
        return ()
    return tuple(s for s in REPLAYABLE if s in chosen)
