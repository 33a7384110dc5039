"""What a phase gives back: `Findings`, the parts of the report it measured.

The run adds up its phases' findings in order (`+`): measurements are appended, a section a phase
measured replaces the empty one.
"""

from __future__ import annotations

from typing import Any

from bench.harness.ceiling import CeilingResult
from bench.pipeline.report import ScenarioEntry, Sections


class Findings(Sections, frozen=True, kw_only=True):
    """Measurements (appended) and the sections a phase measured (replacing None)."""

    scenarios: tuple[ScenarioEntry, ...] = ()
    raw_driver: tuple[CeilingResult, ...] = ()
    async_layer: tuple[CeilingResult, ...] = ()
    http_floor: tuple[ScenarioEntry, ...] = ()

    def sections(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Sections.__struct_fields__}

    def __add__(self, later: Findings) -> Findings:
        merged: dict[str, Any] = {}
        for name in self.__struct_fields__:
            mine, theirs = getattr(self, name), getattr(later, name)
            if isinstance(mine, tuple):
                merged[name] = mine + theirs
            else:
                merged[name] = mine if theirs is None else theirs
        return Findings(**merged)
