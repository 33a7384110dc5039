"""CPU seconds and resident memory of the processes a scenario involves, read from /proc.

granian serves from worker processes it forks, so the service's figures are summed over its whole
process tree. Children that exit during a measurement (the load generator, the ceilings) are
accounted through `resource.getrusage(RUSAGE_CHILDREN)` by whoever waits for them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

_PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one live process (all its threads); 0 once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the command name: state is index 0, utime index 11, stime index 12 (fields 14 and 15).
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    try:
        resident_pages = int((_PROC / str(pid) / "statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * _PAGE_BYTES


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        parent = parent_of(int(entry.name))
        if parent is not None:
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds(root: int) -> float:
    return sum(cpu_seconds(pid) for pid in process_tree(root))


def tree_rss_bytes(root: int) -> int:
    return sum(rss_bytes(pid) for pid in process_tree(root))


class CpuMeter:
    """CPU seconds each named process tree spends between `start()` and `stop()`."""

    def __init__(self, roots: dict[str, int | None]) -> None:
        self._roots = {name: pid for name, pid in roots.items() if pid is not None}
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: tree_cpu_seconds(pid) for name, pid in self._roots.items()}

    def stop(self) -> dict[str, float]:
        return {
            name: round(tree_cpu_seconds(pid) - self._before.get(name, 0.0), 3)
            for name, pid in self._roots.items()
        }


class RssSampler:
    """Samples a process tree's resident memory on a background thread and keeps the peak."""

    def __init__(self, root: int, interval_s: float = 0.02) -> None:
        self._root = root
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._pids: list[int] = process_tree(root)
        self.baseline_bytes = self._sample()
        self.peak_bytes = self.baseline_bytes

    def _sample(self) -> int:
        return sum(rss_bytes(pid) for pid in self._pids)

    def _run(self) -> None:
        refresh_at = 0
        while not self._stop.wait(self._interval_s):
            refresh_at += 1
            if refresh_at % 50 == 0:  # workers are long-lived: rescanning /proc rarely is enough
                self._pids = process_tree(self._root)
            self.peak_bytes = max(self.peak_bytes, self._sample())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._sample())


def children_cpu_seconds() -> float:
    """CPU seconds of every child this process has waited for so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def total(values: Iterable[float]) -> float:
    return round(sum(values), 3)


def own_cpu_seconds() -> float:
    """CPU seconds of this process so far (all its threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
