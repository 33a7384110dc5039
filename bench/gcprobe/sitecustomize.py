"""The garbage collector's share of a profiled service: loaded through PYTHONPATH by
`python -m bench.probes.profile`, never by the service itself.

With `CQLSTAR_GC_PROBE_DIR` set, every process started from this interpreter (granian's server and
its forked workers) adds up the time its collections take (`gc.callbacks`) and how many ran per
generation, and rewrites `<dir>/gc.<pid>.json` with those running totals twice a second. The
profiler reads the worker's file before and after its measurement and reports the difference.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from typing import Any

_DIRECTORY = os.environ.get("CQLSTAR_GC_PROBE_DIR")
_PUBLISH_EVERY_S = 0.5

_totals: dict[str, Any] = {"seconds": 0.0, "collections": [0, 0, 0]}
_started = [0.0]


def _on_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    _totals["seconds"] += time.perf_counter() - _started[0]
    _totals["collections"][info["generation"]] += 1


def _publish(directory: str) -> None:
    path = os.path.join(directory, f"gc.{os.getpid()}.json")
    while True:
        time.sleep(_PUBLISH_EVERY_S)
        staging = f"{path}.tmp"
        with open(staging, "w", encoding="utf-8") as file:
            json.dump(_totals, file)
        os.replace(staging, path)  # a reader never sees half a file


def _start_publishing() -> None:
    if _DIRECTORY:
        threading.Thread(target=_publish, args=(_DIRECTORY,), name="gc-probe", daemon=True).start()


if _DIRECTORY:
    gc.callbacks.append(_on_collection)
    _start_publishing()
    # Threads do not survive fork: granian's workers start their own publisher.
    os.register_at_fork(after_in_child=_start_publishing)
