"""How `report.md` writes a value, a percentage, a CPU figure and a table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class HasCpu(Protocol):
    @property
    def cpu_seconds(self) -> dict[str, float]: ...


def fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def cpu(entry: HasCpu, process: str) -> str:
    seconds = entry.cpu_seconds.get(process)
    return "-" if seconds is None else f"{seconds:.1f}"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(cell if isinstance(cell, str) else fmt(cell) for cell in row) + " |"
        for row in rows
    ]
    return [*lines, ""]
