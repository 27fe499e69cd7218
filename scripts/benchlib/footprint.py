"""What a running layout costs at idle: memory (PSS) and CPU, per role and in all.

`idle_footprint({"nginx": [pid], "web": [pid], ...})` takes each role's
root processes, adds their descendants (gunicorn's workers, worker.py's RQ
workers, nginx's workers), and measures over a window:

- memory as the sum of PSS (`Pss:` of /proc/<pid>/smaps_rollup): each
  process's private pages plus its share of pages shared with others (a
  forked worker's copy-on-write pages count once in all, not once per
  process, as RSS would). The sum is what the layout takes from the
  machine's RAM.
- CPU as the user and system time all of them used during the window
  (/proc/<pid>/stat), in percent of one core.

Linux only; reading another user's processes needs root. Used for the
Debian layout's figures (docs/deploy.md); the Procfile and one-dyno layouts
can be measured with the same call on their processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Footprint:
    """Idle cost of a layout: PSS in MiB and CPU in % of one core, per role and in all."""

    window: float
    pss_mib: dict[str, float] = field(default_factory=dict)
    cpu_percent: dict[str, float] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)

    @property
    def total_pss_mib(self) -> float:
        return sum(self.pss_mib.values())

    @property
    def total_cpu_percent(self) -> float:
        return sum(self.cpu_percent.values())

    def lines(self) -> list[str]:
        """One line per role, then the total, for a report."""
        rows = [
            f"{role}: {self.processes[role]} processes, {self.pss_mib[role]:.1f} MiB PSS, "
            f"{self.cpu_percent[role]:.2f} % CPU"
            for role in self.pss_mib
        ]
        rows.append(
            f"total: {sum(self.processes.values())} processes, {self.total_pss_mib:.1f} MiB PSS, "
            f"{self.total_cpu_percent:.2f} % CPU over {self.window:.0f} s"
        )
        return rows


def children_map() -> dict[int, list[int]]:
    """{parent pid: [child pids]} of every process on the machine."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # The command name (field 2) may hold spaces and parentheses: split after it.
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    return children


def with_descendants(
    roots: Iterable[int], children: Mapping[int, list[int]], stop: Iterable[int] = ()
) -> list[int]:
    """`roots` and every process below them, but not below (nor) the pids of `stop`."""
    found: list[int] = []
    excluded = set(stop)
    stack = [pid for pid in roots if pid not in excluded]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.append(pid)
            stack.extend(child for child in children.get(pid, []) if child not in excluded)
    return sorted(found)


def pss_kib(pid: int) -> int:
    """The process's proportional set size in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def idle_footprint(roles: Mapping[str, Iterable[int]], window: float = 30.0) -> Footprint:
    """Measure `roles` (role -> root pids) left alone for `window` seconds.

    Each role is its roots and their descendants, except those of another
    role: {"supervisord": [its pid], "web": [gunicorn's pid]} counts
    supervisord alone in the first.

    Memory is read at the end of the window; CPU counts the processes alive
    at both ends (a process started meanwhile would be a sign the layout is
    not idle: a restart loop).
    """
    children = children_map()
    roots = {role: set(pids) for role, pids in roles.items()}
    groups = {
        # A supervisor's role stops where another role starts: each process counts once.
        role: with_descendants(pids, children, stop=set().union(*roots.values()) - pids)
        for role, pids in roots.items()
    }
    before = {pid: cpu_seconds(pid) for pids in groups.values() for pid in pids}
    start = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - start
    pss, cpu, counts = {}, {}, {}
    for role, pids in groups.items():
        pss[role] = sum(pss_kib(pid) for pid in pids) / 1024
        used = sum(max(0.0, cpu_seconds(pid) - before[pid]) for pid in pids)
        cpu[role] = 100 * used / elapsed
        counts[role] = len(pids)
    return Footprint(window=elapsed, pss_mib=pss, cpu_percent=cpu, processes=counts)
