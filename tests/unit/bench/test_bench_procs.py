from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.harness.procs import CpuMeter, RssSampler, cpu_seconds, process_tree, rss_bytes


def _burn(iterations: int = 300_000) -> int:
    return sum(i * i for i in range(iterations))


def test_own_process_has_cpu_time_and_memory() -> None:
    _burn()
    assert cpu_seconds(os.getpid()) > 0
    assert rss_bytes(os.getpid()) > 1_000_000


def test_a_gone_process_reads_as_zero() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert cpu_seconds(child.pid) == 0.0
    assert rss_bytes(child.pid) == 0


def test_process_tree_includes_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert child.pid in process_tree(os.getpid())
    finally:
        child.communicate(b"")


def test_cpu_meter_reports_what_was_spent_between_start_and_stop() -> None:
    meter = CpuMeter({"self": os.getpid(), "absent": None})
    meter.start()
    _burn(2_000_000)
    spent = meter.stop()
    assert set(spent) == {"self"}
    assert spent["self"] > 0


def test_rss_sampler_sees_a_peak_above_its_baseline() -> None:
    with RssSampler(os.getpid(), interval_s=0.005) as sampler:
        ballast = bytearray(64 * 2**20)
        ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page so it is resident
        deadline = time.monotonic() + 10
        while sampler.peak_bytes < sampler.baseline_bytes + 32 * 2**20:
            assert time.monotonic() < deadline, "the sampler never saw the ballast"
            _burn(10_000)
        del ballast
    assert sampler.peak_bytes >= sampler.baseline_bytes + 32 * 2**20
