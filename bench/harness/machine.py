"""The facts a reader needs to weigh a figure: the machine, the software versions, the commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import msgspec

from bench.harness.config import ROOT

_PACKAGES = (
    "cqlstar",
    "litestar",
    "msgspec",
    "granian",
    "uvloop",
    "cassandra-driver",
    "opentelemetry-sdk",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return completed.stdout.strip()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    cpu: str
    cores: int | None
    memory_gib: float
    load_average_at_start: tuple[float, ...]
    kernel: str
    python: str
    packages: dict[str, str]
    git_commit: str


def machine_facts() -> Machine:
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count(),
        memory_gib=_memory_gib(),
        load_average_at_start=tuple(round(x, 2) for x in os.getloadavg()),
        kernel=platform.release(),
        python=platform.python_version(),
        packages={name: _version(name) for name in _PACKAGES},
        git_commit=_git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
    )
