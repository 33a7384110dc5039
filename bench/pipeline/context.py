"""What every phase of a run is given: the settings, wrk, the dataset, and the run's journal.

The journal keeps the notes (the report's `notes`) and the phases that failed. A phase that raises
is recorded there and the run goes on with the next (`attempt`); its partial figures are lost, so
a phase that measures several things in turn attempts each on its own.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bench.harness.config import BenchConfig
from bench.harness.console import say
from bench.harness.provision import Dataset, service_env

T = TypeVar("T")


@dataclass
class Journal:
    notes: list[str] = field(default_factory=list)
    failed_phases: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def attempt(self, name: str, body: Callable[[], T]) -> T | None:
        """`body()`, or None when it raised: the failure is noted and printed, not raised."""
        try:
            return body()
        except Exception as exc:
            self.failed_phases.append(name)
            self.notes.append(f"phase {name} failed: {type(exc).__name__}: {str(exc)[:600]}")
            say(f"FAILED {name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            return None


@dataclass(frozen=True)
class RunContext:
    config: BenchConfig
    wrk: str
    dataset: Dataset
    journal: Journal

    def service_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return service_env(self.config, self.dataset, extra)

    def note(self, text: str) -> None:
        self.journal.note(text)

    def attempt(self, name: str, body: Callable[[], T]) -> T | None:
        return self.journal.attempt(name, body)
