"""The memory of a served process tree, read from /proc (granian serves from a worker it forks)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def process_tree(root: int) -> list[int]:
    """`root` and every descendant."""
    pids, pending = [], [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                pending += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return pids


def resident_bytes(pids: Iterable[int]) -> int:
    """The summed RSS of `pids` (those that have exited count nothing)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
