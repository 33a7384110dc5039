"""The garbage collector's work in a served process, as `bench/gcprobe` publishes it.

The served processes load `bench/gcprobe/sitecustomize.py` through `PYTHONPATH` (only when a probe
asks: the service itself never loads it); it counts collections and their time with
`gc.callbacks` and writes running totals to `gc.<pid>.json` in `CQLSTAR_GC_PROBE_DIR`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bench.harness.config import BENCH_DIR

GC_PROBE = BENCH_DIR / "gcprobe"


def read_gc_totals(directory: Path, pid: int) -> dict[str, Any] | None:
    """The running garbage-collector totals `bench/gcprobe` publishes for `pid`, if any yet."""
    try:
        totals: dict[str, Any] = json.loads((directory / f"gc.{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    return totals


def gc_probe_env(directory: Path) -> dict[str, str]:
    """What makes the served processes load `bench/gcprobe` and publish into `directory`."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(GC_PROBE), os.environ.get("PYTHONPATH")])),
        "CQLSTAR_GC_PROBE_DIR": str(directory),
    }


def gc_summary(
    before: dict[str, Any] | None, after: dict[str, Any] | None, cpu_seconds: float
) -> str:
    """One line on the collector's work between two readings of the worker's totals."""
    if before is None or after is None:
        return "Garbage collector: not measured (the probe published no totals)."
    seconds = after["seconds"] - before["seconds"]
    runs = [a - b for a, b in zip(after["collections"], before["collections"], strict=True)]
    share = f", {100 * seconds / cpu_seconds:.1f}% of the worker's CPU" if cpu_seconds > 0 else ""
    return (
        f"Garbage collector during the sample: {seconds:.3f} s in {runs[0]}/{runs[1]}/{runs[2]} "
        f"collections (generations 0/1/2){share}."
    )
