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
import collections
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.harness.config import BENCH_DIR, ROOT, BenchConfig
from bench.harness.http_floor import FLOOR_PATH
from bench.harness.procs import CpuMeter, cpu_seconds, process_tree
from bench.harness.server import FLOOR_FACTORY, SERVICE_FACTORY, serve, stop
from bench.harness.wrk import WrkResult, compose_script, run_wrk
from bench.run import SCENARIOS, Run, provision, say

# Innermost match wins, so the order only matters for paths two patterns could both claim.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("logging", r"^(logging/|cqlstar/telemetry/logs\.py)"),
    ("opentelemetry sdk", r"^(trace/|attributes/|util/__init__\.py|context/|sdk/|propagate/)"),
    ("anyio (litestar dependency task groups)", r"^anyio/"),
    ("cassandra-driver", r"^cassandra/"),
    ("uuid (driver decoding)", r"^uuid\.py"),
    ("cqlstar.aiocassandra", r"^cqlstar/aiocassandra/"),
    ("cqlstar.users", r"^cqlstar/users/"),
    ("cqlstar.telemetry http middleware", r"^cqlstar/telemetry/http\.py"),
    ("cqlstar.telemetry other", r"^cqlstar/telemetry/"),
    ("cqlstar.web", r"^cqlstar/web/"),
    ("litestar dependency injection", r"^litestar/(_kwargs|_signature|di\.py)"),
    ("litestar response", r"^litestar/response/"),
    ("litestar other", r"^litestar/"),
    ("asyncio", r"^asyncio/"),
    ("granian", r"^granian/"),
)
_FRAME_FILE = re.compile(r"\(([^:()]+):\d+\)")


def component_of(frame: str) -> str | None:
    match = _FRAME_FILE.search(frame)
    if match is None:
        return None
    path = match.group(1)
    for name, pattern in COMPONENTS:
        if re.search(pattern, path):
            return name
    return f"other ({path})"


def read_collapsed(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """py-spy's raw format: `frame;frame;...;frame count` per line, outermost frame first."""
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if count.isdigit():
            stacks.append((stack.split(";") if stack else [], int(count)))
    return stacks


def attribute(stacks: list[tuple[list[str], int]]) -> tuple[int, collections.Counter[str]]:
    """Samples per component, by the innermost frame that names one."""
    shares: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in stacks:
        total += count
        owner = next((c for f in reversed(frames) if (c := component_of(f))), "native / no frame")
        shares[owner] += count
    return total, shares


def hottest_frames(stacks: list[tuple[list[str], int]], top: int) -> list[tuple[str, int]]:
    own: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        if frames:
            own[frames[-1]] += count
    return own.most_common(top)


def summarise(stacks: list[tuple[list[str], int]], header: str, top: int = 15) -> str:
    total, shares = attribute(stacks)
    lines = [
        header,
        "",
        f"{total} samples with the GIL held",
        "",
        "| component | share |",
        "|---|---|",
    ]
    lines += [f"| {name} | {100 * n / total:.1f}% |" for name, n in shares.most_common()]
    lines += ["", "Hottest frames (own time):", ""]
    lines += [f"- {100 * n / total:.1f}% {frame}" for frame, n in hottest_frames(stacks, top)]
    return "\n".join(lines) + "\n"


def record(pid: int, seconds: int, output: Path) -> None:
    command = [
        "uv", "tool", "run", "--from", "py-spy", "py-spy", "record",
        "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
        "--format", "raw", "--output", str(output), "--gil", "--nonblocking",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=seconds + 120)


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
    run = Run(config)
    provision(run)
    extra = dict(item.split("=", 1) for item in args.env)
    gc_dir = output / "gc"
    floor = args.scenario == "http_floor"
    server = serve(
        "profile",
        FLOOR_FACTORY if floor else SERVICE_FACTORY,
        run.service_env({**gc_probe_env(gc_dir), **extra}),
        output / "logs",
        ready_path=FLOOR_PATH if floor else "/health",
    )
    try:
        worker = next((p for p in process_tree(server.pid) if p != server.pid), server.pid)
        script = compose_script(SCENARIOS[args.scenario].script, output / "work")
        script_args = (str(run.ids_file),) if SCENARIOS[args.scenario].needs_ids else ()
        url = server.base_url + SCENARIOS[args.scenario].path

        def load(seconds: int) -> WrkResult:
            return run_wrk(
                run.wrk,
                url,
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
        gc_before = read_gc_totals(gc_dir, worker)
        cpu_before = cpu_seconds(worker)
        record(worker, args.seconds, raw)
        time.sleep(1)  # one more publication of the totals, covering the whole sample
        gc_line = gc_summary(
            gc_before, read_gc_totals(gc_dir, worker), cpu_seconds(worker) - cpu_before
        )
        driver.join()
    finally:
        stop(server)
    wrk: WrkResult = results["wrk"]
    cpu: float = results["cpu"]
    header = (
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
    text = summarise(read_collapsed(raw.read_text().splitlines()), header)
    summary = output / f"{args.scenario}.md"
    summary.write_text(text)
    print(text)
    say(
        f"summary: {summary.relative_to(ROOT) if summary.is_relative_to(ROOT) else summary}; stacks: {raw}"
    )


if __name__ == "__main__":
    main()
