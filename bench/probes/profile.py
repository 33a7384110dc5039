"""Where the service's time goes under load: py-spy samples the granian worker while wrk drives it.

    uv run python -m bench.probes.profile                       # get_user at concurrency 64, 15 s
    uv run python -m bench.probes.profile update_user --seconds 20 --env OTEL_SDK_DISABLED=true
    uv run python -m bench.probes.profile http_floor            # the same app stack, a constant body

Only samples taken while a thread holds the GIL are kept (`py-spy --gil`): with one worker process,
the GIL is what serialises the event loop, the driver's I/O thread and the exporter, so "share of
GIL samples" is "share of the worker's capacity". Each sample is attributed to the innermost frame
that belongs to a known component (the driver, the async layer, OpenTelemetry, logging, Litestar's
dependency injection, ...), and the summary prints those shares and the hottest frames. The raw
collapsed stacks are kept next to the summary for flame-graph tools.

py-spy comes from PyPI through `uv tool run` (nothing is added to the project's environment); it
needs permission to read another process's memory (root, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness.config import ROOT, BenchConfig
from bench.harness.console import say
from bench.harness.http_floor import FLOOR_PATH
from bench.harness.procs import CpuMeter, cpu_seconds, process_tree
from bench.harness.provision import Dataset, provision_dataset, service_env
from bench.harness.scenarios import SCENARIOS
from bench.harness.server import FLOOR_FACTORY, SERVICE_FACTORY, Server, serve, stop
from bench.harness.wrk import WrkResult, compose_script, find_wrk, run_wrk
from bench.probes.gc_totals import gc_probe_env, gc_summary, read_gc_totals
from bench.probes.profile_stacks import read_collapsed, summarise


def record(pid: int, seconds: int, output: Path) -> None:
    command = [
        "uv", "tool", "run", "--from", "py-spy", "py-spy", "record",
        "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
        "--format", "raw", "--output", str(output), "--gil", "--nonblocking",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=seconds + 120)


def _profiled_load(
    args: argparse.Namespace, wrk: str, dataset: Dataset, server: Server, output: Path
) -> tuple[WrkResult, float, str, Path]:
    """wrk drives the scenario while py-spy samples the worker: wrk's figures, the service's CPU,
    the collector's line and the collapsed stacks' file."""
    scenario = SCENARIOS[args.scenario]
    worker = next((p for p in process_tree(server.pid) if p != server.pid), server.pid)
    script = compose_script(scenario.script, output / "work")
    script_args = (str(dataset.ids_file),) if scenario.needs_ids else ()

    def load(seconds: int) -> WrkResult:
        return run_wrk(
            wrk,
            server.base_url + scenario.path,
            script,
            connections=args.concurrency,
            seconds=seconds,
            script_args=script_args,
        )

    load(3)  # warm-up
    results: dict[str, Any] = {}
    meter = CpuMeter({"service": server.pid})

    def measured() -> None:
        meter.start()
        results["wrk"] = load(args.seconds + 4)
        results["cpu"] = meter.stop()["service"]

    driver = threading.Thread(target=measured)
    driver.start()
    time.sleep(2)  # let the load settle before sampling
    raw = output / f"{args.scenario}.collapsed.txt"
    say(
        f"py-spy on the worker (pid {worker}) for {args.seconds} s under {args.scenario} c={args.concurrency}"
    )
    gc_dir = output / "gc"
    gc_before = read_gc_totals(gc_dir, worker)
    cpu_before = cpu_seconds(worker)
    record(worker, args.seconds, raw)
    time.sleep(1)  # one more publication of the totals, covering the whole sample
    gc_line = gc_summary(
        gc_before, read_gc_totals(gc_dir, worker), cpu_seconds(worker) - cpu_before
    )
    driver.join()
    return results["wrk"], results["cpu"], gc_line, raw


def _header(args: argparse.Namespace, wrk: WrkResult, cpu: float, gc_line: str) -> str:
    return (
        f"# Profile of {args.scenario} at concurrency {args.concurrency}"
        + (f" with {' '.join(args.env)}" if args.env else "")
        + f"\n\n{wrk.requests_per_second:,.0f} req/s, p50 {wrk.p50_ms:.1f} ms, p99 {wrk.p99_ms:.1f} ms, "
        f"service CPU {1e6 * cpu / max(wrk.requests, 1):.0f} µs per request; load average "
        f"{os.getloadavg()[0]:.2f}. Reproduce: `uv run python -m bench.probes.profile {args.scenario} "
        f"--seconds {args.seconds} --concurrency {args.concurrency}"
        + "".join(f" --env {e}" for e in args.env)
        + "`\n\n"
        + gc_line
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "scenario",
        nargs="?",
        default="get_user",
        choices=list(SCENARIOS),
        help="http_floor serves the floor's app (the same stack, a constant body) instead",
    )
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the service")
    args = parser.parse_args(argv)

    config = BenchConfig.from_env()
    output = config.output.parent / "profile"
    wrk = find_wrk()
    dataset = provision_dataset(config)
    extra = dict(item.split("=", 1) for item in args.env)
    floor = args.scenario == "http_floor"
    server = serve(
        "profile",
        FLOOR_FACTORY if floor else SERVICE_FACTORY,
        service_env(config, dataset, {**gc_probe_env(output / "gc"), **extra}),
        output / "logs",
        ready_path=FLOOR_PATH if floor else "/health",
    )
    try:
        result, cpu, gc_line, raw = _profiled_load(args, wrk, dataset, server, output)
    finally:
        stop(server)
    text = summarise(
        read_collapsed(raw.read_text().splitlines()), _header(args, result, cpu, gc_line)
    )
    summary = output / f"{args.scenario}.md"
    summary.write_text(text)
    print(text)
    say(
        f"summary: {summary.relative_to(ROOT) if summary.is_relative_to(ROOT) else summary}; stacks: {raw}"
    )


if __name__ == "__main__":
    main()
