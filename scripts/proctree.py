"""Processes read from Linux's /proc: which (a tree, its descendants), how much memory and CPU.

The one place the tools and tests read /proc: the tests of onedyno.py (no
process left behind), the end-to-end stacks (tests/stack.py,
scripts/debian_layout.py: what a layout started and left running) and
`make bench` (the `layouts` section: the memory and idle CPU of each
deployment layout, by unit).

Memory is given two ways, both from `/proc/<pid>/smaps_rollup`: RSS counts
every page a process maps, so pages shared by several processes (a forked
worker and its parent, the same libraries) are counted once per process;
PSS divides each shared page between the processes sharing it, so the PSS
of a group of processes adds up to what they really hold. Reading another
user's processes needs root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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


def tree(pid: int, stop: Iterable[int] = ()) -> list[int]:
    """`pid` and all its descendants, parents first; none of `stop` nor below them.

    `stop` splits a tree into parts: a supervisor's tree without its
    programs' trees (`tree(supervisor, stop=programs)`) is the supervisor
    alone.
    """
    excluded = set(stop)
    pids, index = [pid], 0
    while index < len(pids):
        pids += [c for c in children(pids[index]) if c not in pids and c not in excluded]
        index += 1
    return [p for p in pids if alive(p)]


def running() -> list[int]:
    """Every process on the machine."""
    return [int(entry.name) for entry in os.scandir(PROC) if entry.name.isdigit()]


def under_shell(pid: int) -> int:
    """The process a `sh -c` wrapper at `pid` runs (honcho's way), or `pid` itself."""
    if command_name(pid) in SHELLS:
        below = children(pid)
        if len(below) == 1:
            return below[0]
    return pid


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from its 3rd field (the state) on; [] once the process is gone.

    The 2nd field, the command name, may hold spaces and parentheses: the
    fields are split after its last `)`.
    """
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return stat.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet collected by its parent, is not)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot), None unless alive.

    With the pid, it names one process: a pid is reused, not with the same
    start time.
    """
    fields = _stat(pid)
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of stat


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


def environment(pid: int) -> bytes:
    """The environment the process started with (`NAME=value\\0...`); b"" if gone or not ours."""
    try:
        return (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's process
        return b""


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


def status_kb(pid: int, name: str) -> int:
    """A size from /proc/<pid>/status, in kB: `VmRSS` (RSS now), `VmHWM` (the most RSS
    it ever held)...; 0 once the process is gone."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in lines:
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def total_memory(pids: list[int]) -> Memory:
    result = Memory(0, 0)
    for pid in pids:
        result += memory(pid)
    return result


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the running processes `pids` have used so far."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")
