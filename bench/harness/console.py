"""The harness's progress lines: `[bench   12.3s] ...`, seconds since the run (this process) began."""

from __future__ import annotations

import time

STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def elapsed_s() -> float:
    return round(time.monotonic() - STARTED, 1)
