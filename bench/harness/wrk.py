"""Driving HTTP load with wrk and reading back its figures.

wrk (Debian's package) is an event-driven C load generator: one thread keeps hundreds of connections
busy for a fraction of a core, which leaves the machine to the service. Each scenario is a Lua script
from `bench/lua/` with `common.lua` prepended; its `done()` prints one `BENCH_RESULT {...}` line with
the percentiles and error counts, so nothing depends on wrk's human-readable output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness.config import BENCH_DIR
from bench.harness.procs import children_cpu_seconds

LUA_DIR = BENCH_DIR / "lua"
RESULT_MARKER = "BENCH_RESULT "
# Longer than any latency we expect at 256 connections: a slow answer must count as a latency, not
# vanish as a timeout.
REQUEST_TIMEOUT = "10s"


class WrkError(RuntimeError):
    """wrk is missing or did not produce a result."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    status_errors: int
    socket_errors: int
    timeouts: int
    load_generator_cpu_s: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def find_wrk() -> str:
    """The path of wrk. Installing it is the recipes' job (`just bench` and `just test` do)."""
    if path := shutil.which("wrk"):
        return path
    raise WrkError(
        "wrk is not installed: run `just bench` (it installs Debian's package when run as root), "
        "or install it yourself (Debian/Ubuntu: `sudo apt-get install -y wrk`)"
    )


def wrk_version(wrk: str) -> str:
    completed = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (completed.stdout or completed.stderr).splitlines()[0].strip()


def compose_script(scenario_script: str, work_dir: Path) -> Path:
    """`common.lua` followed by the scenario's script, as one file wrk can load."""
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / f"wrk_{scenario_script}"
    common = (LUA_DIR / "common.lua").read_text()
    target.write_text(common + "\n" + (LUA_DIR / scenario_script).read_text())
    return target


def parse_result(output: str) -> dict[str, float]:
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            parsed: dict[str, float] = json.loads(line[len(RESULT_MARKER) :])
            return parsed
    raise WrkError(f"wrk printed no {RESULT_MARKER.strip()} line:\n{output[-2000:]}")


def to_result(raw: dict[str, float], cpu_s: float) -> WrkResult:
    duration_s = raw["duration_us"] / 1e6
    socket_errors = int(raw["connect_errors"] + raw["read_errors"] + raw["write_errors"])
    timeouts = int(raw["timeout_errors"])
    status_errors = int(raw["status_errors"])
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=round(duration_s, 3),
        requests_per_second=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=round(raw["p50_us"] / 1000, 3),
        p90_ms=round(raw["p90_us"] / 1000, 3),
        p99_ms=round(raw["p99_us"] / 1000, 3),
        max_ms=round(raw["max_us"] / 1000, 3),
        mean_ms=round(raw["mean_us"] / 1000, 3),
        errors=status_errors + socket_errors + timeouts,
        status_errors=status_errors,
        socket_errors=socket_errors,
        timeouts=timeouts,
        load_generator_cpu_s=round(cpu_s, 3),
    )


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: int,
    threads: int = 1,
    script_args: tuple[str, ...] = (),
) -> WrkResult:
    """Run wrk to completion; its CPU seconds come from the kernel's accounting of our children."""
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={REQUEST_TIMEOUT}",
        "-s",
        str(script),
        url,
    ]
    if script_args:
        command += ["--", *script_args]
    cpu_before = children_cpu_seconds()
    started = time.monotonic()
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    cpu_s = children_cpu_seconds() - cpu_before
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited {completed.returncode} after {time.monotonic() - started:.1f}s:\n"
            f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}"
        )
    return to_result(parse_result(completed.stdout), cpu_s)
