"""A process and its descendants, read from Linux's /proc: which, how much memory, how much CPU.

For the tests of onedyno.py (no process left behind) and `make bench`'s
`layouts` section (the memory and idle CPU of each deployment layout).

Memory is given two ways, both from `/proc/<pid>/smaps_rollup`: RSS counts
every page a process maps, so pages shared by several processes (a forked
worker and its parent, the same libraries) are counted once per process;
PSS divides each shared page between the processes sharing it, so the PSS
of a group of processes adds up to what they really hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
SHELLS = {"sh", "dash", "bash"}


def children(pid: int) -> list[int]:
    """The direct children of `pid` (of each of its threads); [] once it is gone."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants, parents first."""
    pids, index = [pid], 0
    while index < len(pids):
        pids += [child for child in children(pids[index]) if child not in pids]
        index += 1
    return [p for p in pids if alive(p)]


def under_shell(pid: int) -> int:
    """The process a `sh -c` wrapper at `pid` runs (honcho's way), or `pid` itself."""
    if command_name(pid) in SHELLS:
        below = children(pid)
        if len(below) == 1:
            return below[0]
    return pid


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet collected by its parent, is not)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def command_name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except FileNotFoundError:
        return ""


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_text().replace("\0", " ").strip()
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class Memory:
    pss_kb: int
    rss_kb: int

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.pss_kb + other.pss_kb, self.rss_kb + other.rss_kb)

    @property
    def text(self) -> str:
        """`312 MB PSS (466 MB RSS)`."""
        return f"{self.pss_kb / 1024:.0f} MB PSS ({self.rss_kb / 1024:.0f} MB RSS)"


def memory(pid: int) -> Memory:
    """The PSS and RSS of one process (zero once it is gone)."""
    values = {"Pss:": 0, "Rss:": 0}
    try:
        lines = (PROC / str(pid) / "smaps_rollup").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        lines = []
    for line in lines:
        fields = line.split()
        if fields and fields[0] in values:
            values[fields[0]] = int(fields[1])
    return Memory(values["Pss:"], values["Rss:"])


def total_memory(pids: list[int]) -> Memory:
    result = Memory(0, 0)
    for pid in pids:
        result += memory(pid)
    return result


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the running processes `pids` have used so far."""
    ticks = 0
    for pid in pids:
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat.rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")
