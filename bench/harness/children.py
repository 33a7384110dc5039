"""Running a measurement in a child process that prints its result as the last line of JSON.

The ceilings and the probes measure in fresh processes (the OpenTelemetry SDK reads its variables
once, and a ceiling must not share an interpreter with the harness); this is how they are run and
read back.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from bench.harness.config import ROOT

T = TypeVar("T")


def without_otel(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any `OTEL_*` variable, with `env` on top: a developer's
    shell must not change what a figure means."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**clean, **(env or {})}


def run_json_child(
    command: Sequence[str],
    result_type: type[T],
    *,
    what: str,
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> T:
    """Run `command` from the repository's root; its last line of output, decoded as `result_type`.

    `env` is the child's whole environment (None: this process's). A child that exits non-zero
    raises RuntimeError with the end of its error output.
    """
    completed = subprocess.run(
        command, cwd=ROOT, env=env, timeout=timeout_s, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{what} exited {completed.returncode}:\n{completed.stderr[-3000:]}")
    return msgspec.json.decode(completed.stdout.strip().splitlines()[-1], type=result_type)
