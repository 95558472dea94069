"""Resources of the processes under test, read from /proc: peak RSS (sampled) and CPU time (on demand).

A process is measured with its descendants (a service that forks workers counts them all), except
those tracked with `tree=False` (the benchmark itself, whose children are the processes under test).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def _vmrss_kb(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    """utime + stime of the process (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            try:
                kids += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return kids


def _tree(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1000:
        current = todo.pop()
        if current not in found:
            found.append(current)
            todo += _children(current)
    return found


class ResourceSampler:
    """Keeps the peak RSS per named process and of the sum over the `group`; reads CPU time on demand."""

    def __init__(self, interval_s: float = 0.2, group: tuple[str, ...] = ()) -> None:
        self.interval_s = interval_s
        self.group = group
        self.max_mb: dict[str, float] = {}
        self.max_group_total_mb = 0.0
        self._pids: dict[str, tuple[int, bool]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)

    def track(self, name: str, pid: int, *, tree: bool = True) -> None:
        with self._lock:
            self._pids[name] = (pid, tree)
            self.max_mb.setdefault(name, 0.0)

    def _members(self) -> dict[str, list[int]]:
        with self._lock:
            pids = dict(self._pids)
        return {name: _tree(pid) if tree else [pid] for name, (pid, tree) in pids.items()}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=5)
            self.sample()

    def sample(self) -> None:
        current = {name: sum(_vmrss_kb(p) for p in pids) / 1024 for name, pids in self._members().items()}
        for name, mb in current.items():
            self.max_mb[name] = max(self.max_mb.get(name, 0.0), mb)
        group_total = sum(mb for name, mb in current.items() if name in self.group)
        self.max_group_total_mb = max(self.max_group_total_mb, group_total)

    def cpu_snapshot(self) -> tuple[float, dict[str, float]]:
        """(wall clock, CPU seconds used so far per process) — two snapshots give CPU use in between."""
        return time.monotonic(), {
            name: sum(_cpu_ticks(p) for p in pids) / TICKS for name, pids in self._members().items()
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()


def cpu_percent(before: tuple[float, dict[str, float]], after: tuple[float, dict[str, float]]) -> dict[str, float]:
    """CPU use between two snapshots, in percent of one core (200 = two cores busy)."""
    wall = after[0] - before[0]
    if wall <= 0:
        return {}
    return {name: round((after[1][name] - before[1].get(name, 0.0)) / wall * 100, 1) for name in after[1]}
