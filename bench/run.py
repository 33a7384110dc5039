"""`just bench`: one run that measures the service, its ceilings and its memory side by side.

    uv run python -m bench.run            (what `just bench` runs; BENCH_* variables, see bench.harness.config)

Phases, each on a freshly started server where one is needed:
1. provision: wrk, the Cassandra node, the bench keyspace with its users, the id pool;
2. the service under granian: get_user at every concurrency;
3. the raw-driver and async-layer ceilings, in their own processes;
4. tracing: get_user with tracing off, in the default configuration (no exporter), on (exported to
   a collector) and sampled at 10%, the four
   taking turns in rounds;
5. the HTTP floor (the same app answering a constant body);
6. the service again: list_users, create_user, update_user at every concurrency, then stream_users
   with its memory, then slow_readers (stalled and slow stream clients, the service's RSS).

The order keeps what the targets compare together, before anything writes: the node's state drifts
as the write scenarios add rows (memtable flushes, compactions), and on a 2-core machine that moved
a ratio between a measurement before them and one after by more than the effect being measured.

A phase that fails is reported (console, `notes` in the report) and the run goes on with the next;
the exit status is non-zero when any phase failed. The report is written either way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from bench import report as reporting
from bench import slow_readers
from bench.harness.collector import Receiver, start_receiver
from bench.harness.config import (
    HTTP_SCENARIOS,
    ROOT,
    SLOW_READERS_SCENARIO,
    STREAM_SCENARIO,
    BenchConfig,
)
from bench.harness.http_floor import FLOOR_PATH
from bench.harness.machine import machine_facts
from bench.harness.procs import CpuMeter, tree_rss_bytes
from bench.harness.seed import ensure_dataset
from bench.harness.server import FLOOR_FACTORY, SERVICE_FACTORY, Server, request, serve, stop
from bench.harness.wrk import WrkResult, compose_script, find_wrk, run_wrk, wrk_version
from bench.stream import measure_stream

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


@dataclass(frozen=True)
class HttpScenario:
    """How wrk drives one scenario: its script, the URL path, and whether it needs the id pool."""

    script: str
    path: str
    needs_ids: bool
    # A request the harness sends once before measuring, to fail fast on a route that is missing:
    # (method, path or None for "an id from the pool", body, expected status).
    probe: tuple[str, str | None, bytes | None, int]


SCENARIOS: dict[str, HttpScenario] = {
    "get_user": HttpScenario("get_user.lua", "/", True, ("GET", None, None, 200)),
    "list_users": HttpScenario(
        "plain_get.lua", "/users?limit=100", False, ("GET", "/users?limit=100", None, 200)
    ),
    "create_user": HttpScenario(
        "create_user.lua",
        "/",
        False,
        ("POST", "/users", b'{"name":"Bench Probe","email":"probe@example.com","age":30}', 201),
    ),
    "update_user": HttpScenario("update_user.lua", "/", True, ("PATCH", None, b'{"age":31}', 200)),
    "http_floor": HttpScenario("plain_get.lua", FLOOR_PATH, False, ("GET", FLOOR_PATH, None, 200)),
}

TRACING_CONFIGURATIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("off", {"OTEL_SDK_DISABLED": "true"}),
    # The `just serve` default: no exporter configured, so no spans; the metrics still count.
    ("default", {}),
    ("on", {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}),
    (
        "sampled",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
)


@dataclass
class Run:
    config: BenchConfig
    wrk: str = ""
    hosts: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    port: int = 9042
    cassandra_pid: int | None = None
    cassandra_version: str = "unknown"
    ids_file: Path = Path()
    first_id: str = ""
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    ceilings: dict[str, Any] = field(default_factory=dict)
    streaming: dict[str, Any] = field(default_factory=dict)
    slow_readers: dict[str, Any] = field(default_factory=dict)
    tracing: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed_phases: list[str] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return self.config.output / "work"

    @property
    def log_dir(self) -> Path:
        return self.config.output / "logs"

    def service_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            "CASSANDRA_HOSTS": ",".join(self.hosts),
            "CASSANDRA_PORT": str(self.port),
            "CASSANDRA_KEYSPACE": self.config.keyspace,
            "LOG_LEVEL": self.config.log_level,
            # The open scenarios measure the service without token checks; the authenticated ones
            # (bench.auth) pass CQLSTAR_AUTH=oidc and the issuer in `extra`.
            "CQLSTAR_AUTH": "disabled",
            # Nor rate limits: with authentication off, every request of the load generator counts
            # in one client address's window, which would answer most of the load 429. bench.limits
            # measures the limits' cost.
            "RATE_LIMIT": "0",
            **(extra or {}),
        }

    def phase(self, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception as exc:
            self.failed_phases.append(name)
            self.notes.append(f"phase {name} failed: {type(exc).__name__}: {str(exc)[:600]}")
            say(f"FAILED {name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()


# The scenario the targets compare with the ceilings and measure tracing with.
READ_BY_KEY = "get_user"


# ---------------------------------------------------------------------------------------------
# Provisioning


def provision(run: Run) -> None:
    run.wrk = find_wrk()
    provision_dataset(run)


def provision_dataset(run: Run) -> None:
    """The Cassandra node (unless CASSANDRA_HOSTS names one), the bench keyspace and the id pool."""
    if hosts := os.environ.get("CASSANDRA_HOSTS", "").strip():
        run.hosts = [h.strip() for h in hosts.split(",") if h.strip()]
        run.port = int(os.environ.get("CASSANDRA_PORT", "9042"))
        run.notes.append(
            f"Cassandra at {hosts}:{run.port} (CASSANDRA_HOSTS): its CPU is not measured"
        )
    else:
        from cqlstar import localnode

        say("starting the local Cassandra node if needed")
        localnode.start()
        run.cassandra_pid = localnode.running_pid()
        run.port = localnode.CQL_PORT
    run.ids_file = run.work_dir / "ids.txt"
    count, run.cassandra_version = ensure_dataset(
        run.hosts, run.port, run.config.keyspace, run.config.rows, run.ids_file
    )
    run.first_id = run.ids_file.read_text().split("\n", 1)[0]
    say(f"Cassandra {run.cassandra_version}; {count} ids in the pool ({run.ids_file})")


# ---------------------------------------------------------------------------------------------
# HTTP measurements


def probe(server: Server, name: str, first_id: str) -> None:
    method, path, body, expected = SCENARIOS[name].probe
    url = server.base_url + (path or f"/users/{first_id}")
    status, text = request(url, method, body, timeout_s=30)
    if status != expected:
        raise RuntimeError(
            f"{name}: {method} {url} answered {status} (expected {expected}): {text[:300]!r}"
        )


def wrk_once(run: Run, server: Server, name: str, concurrency: int, seconds: int) -> WrkResult:
    scenario = SCENARIOS[name]
    script = compose_script(scenario.script, run.work_dir)
    return run_wrk(
        run.wrk,
        server.base_url + scenario.path,
        script,
        connections=concurrency,
        seconds=seconds,
        threads=min(run.config.wrk_threads, concurrency),
        script_args=(str(run.ids_file),) if scenario.needs_ids else (),
    )


def http_entry(
    name: str, concurrency: int, result: WrkResult, cpu: dict[str, float]
) -> dict[str, Any]:
    cpu_seconds = {**cpu, "load_generator": result.load_generator_cpu_s}
    spent = sum(cpu_seconds.values())
    return {
        "name": name,
        "concurrency": concurrency,
        "requests_per_second": result.requests_per_second,
        "p50_ms": result.p50_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "max_ms": result.max_ms,
        "errors": result.errors,
        "requests": result.requests,
        "duration_s": result.duration_s,
        "mean_ms": result.mean_ms,
        "status_errors": result.status_errors,
        "socket_errors": result.socket_errors,
        "timeouts": result.timeouts,
        "cpu_seconds": cpu_seconds,
        "cpu_cores": {k: round(v / result.duration_s, 2) for k, v in cpu_seconds.items()}
        if result.duration_s
        else {},
        "load_generator_cpu_share": round(result.load_generator_cpu_s / spent, 3)
        if spent
        else None,
        # CPU per request holds still on a busy machine, where requests per second do not.
        "service_cpu_us_per_request": round(1e6 * cpu["service"] / result.requests, 1)
        if result.requests and "service" in cpu
        else None,
    }


def measure_http(
    run: Run,
    server: Server,
    name: str,
    concurrency: int,
    *,
    label: str | None = None,
    extra_roots: dict[str, int | None] | None = None,
    seconds: int | None = None,
) -> dict[str, Any]:
    meter = CpuMeter({"service": server.pid, "cassandra": run.cassandra_pid, **(extra_roots or {})})
    meter.start()
    result = wrk_once(run, server, name, concurrency, seconds or run.config.seconds)
    entry = http_entry(label or name, concurrency, result, meter.stop())
    say(
        f"{label or name} c={concurrency}: {result.requests_per_second:,.0f} req/s, "
        f"p50 {result.p50_ms:.2f} ms, p90 {result.p90_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"max {result.max_ms:.1f} ms, {result.errors} errors; cpu cores: "
        + ", ".join(f"{k} {v:.2f}" for k, v in entry["cpu_cores"].items())
    )
    if result.errors:
        run.notes.append(
            f"{label or name} c={concurrency}: {result.errors} errors of {result.requests} "
            f"(status {result.status_errors}, socket {result.socket_errors}, timeouts {result.timeouts})"
        )
    return entry


def warm_up(run: Run, server: Server, name: str) -> int:
    """Unmeasured load on a fresh server; returns how many requests it sent."""
    if run.config.warmup_seconds <= 0:
        return 0
    result = wrk_once(
        run, server, name, run.config.reference_concurrency, run.config.warmup_seconds
    )
    return result.requests


def service_phase(run: Run, names: tuple[str, ...], *, stream: bool) -> None:
    """The scenarios `names` (those the configuration wants), then stream_users if `stream`."""
    config = run.config
    wanted = [name for name in names if config.wants(name)]
    slow = stream and config.wants(SLOW_READERS_SCENARIO)
    stream = stream and config.wants(STREAM_SCENARIO)
    if not wanted and not stream and not slow:
        return
    say("serving the service (cqlstar.app:create_app) under granian")
    server = serve(
        "service", SERVICE_FACTORY, run.service_env(), run.log_dir, workers=config.workers
    )
    try:
        for name in wanted:
            run.phase(name, lambda name=name: _measure_scenario(run, server, name))  # type: ignore[misc]
        if stream:
            run.phase(STREAM_SCENARIO, lambda: stream_phase(run, server))
        if slow:
            run.phase(SLOW_READERS_SCENARIO, lambda: slow_readers_phase(run, server))
    finally:
        stop(server)


def _measure_scenario(run: Run, server: Server, name: str) -> None:
    probe(server, name, run.first_id)
    warm_up(run, server, name)
    for concurrency in run.config.concurrency:
        run.scenarios.append(measure_http(run, server, name, concurrency))


def stream_phase(run: Run, server: Server) -> None:
    config = run.config
    baseline_mb = tree_rss_bytes(server.pid) / 2**20
    # One short stream first: its peak against the long one's shows whether memory follows rows.
    small_rows = max(1, config.stream_rows // 10)
    small = measure_stream(server.base_url, server.pid, small_rows, config.stream_fetch_size, 0)
    meter = CpuMeter({"service": server.pid, "cassandra": run.cassandra_pid})
    meter.start()
    client_before = time.thread_time()
    full = measure_stream(
        server.base_url, server.pid, config.stream_rows, config.stream_fetch_size, config.seconds
    )
    cpu = {**meter.stop(), "load_generator": round(time.thread_time() - client_before, 3)}
    entry = {
        "name": STREAM_SCENARIO,
        "concurrency": 1,
        "requests_per_second": full.streams_per_second,
        **msgspec.structs.asdict(full.latency),
        "errors": full.errors,
        "rows_per_second": full.rows_per_second,
        "rows_per_stream": config.stream_rows,
        "fetch_size": config.stream_fetch_size,
        "streams": full.streams,
        "first_row_ms": full.first_row_ms,
        "duration_s": full.duration_s,
        "baseline_rss_mb": round(baseline_mb, 1),
        "peak_rss_mb": full.peak_rss_mb,
        "cpu_seconds": cpu,
    }
    run.scenarios.append(entry)
    run.streaming = {
        "rows_per_second": full.rows_per_second,
        "baseline_rss_mb": round(baseline_mb, 1),
        "peak_rss_mb": max(full.peak_rss_mb, small.peak_rss_mb),
        "rss_growth_mb_by_rows": {
            str(small_rows): round(small.peak_rss_mb - baseline_mb, 1),
            str(config.stream_rows): round(full.peak_rss_mb - baseline_mb, 1),
        },
        # A finished stream that leaves memory behind (a page kept alive by a reference cycle, say)
        # shows here rather than in the peaks: each stream's own peak can stay flat.
        "rss_after_first_stream_mb": full.rss_after_first_mb,
        "rss_after_last_stream_mb": full.rss_after_last_mb,
        "streams_after_first": full.streams - 1,
    }
    say(
        f"stream_users: {full.rows_per_second:,.0f} rows/s over {full.streams} stream(s) of "
        f"{config.stream_rows} rows; service RSS {baseline_mb:.0f} MiB before, peak "
        f"{small.peak_rss_mb:.0f} MiB at {small_rows} rows, {full.peak_rss_mb:.0f} MiB at "
        f"{config.stream_rows} rows; {full.errors} errors"
    )


def slow_readers_phase(run: Run, server: Server) -> None:
    result = slow_readers.measure_slow_readers(
        server.base_url, server.pid, run.config.stream_fetch_size, run.config.seconds
    )
    run.slow_readers = result.as_dict()
    say(slow_readers.summary(result))


def floor_phase(run: Run) -> None:
    say("serving the HTTP floor (bench.harness.http_floor:create_floor_app) under granian")
    server = serve(
        "http_floor",
        FLOOR_FACTORY,
        run.service_env(),
        run.log_dir,
        workers=run.config.workers,
        ready_path=FLOOR_PATH,
    )
    try:
        probe(server, "http_floor", run.first_id)
        warm_up(run, server, "http_floor")
        entries = [
            measure_http(run, server, "http_floor", c, label="http_floor")
            for c in run.config.concurrency
        ]
    finally:
        stop(server)
    run.ceilings["http_floor"] = entries


# ---------------------------------------------------------------------------------------------
# Ceilings without HTTP


def ceiling_phase(run: Run, kind: str, module: str) -> None:
    entries = []
    for concurrency in run.config.concurrency:
        command = [
            sys.executable,
            "-m",
            module,
            "--hosts",
            ",".join(run.hosts),
            "--port",
            str(run.port),
            "--keyspace",
            run.config.keyspace,
            "--ids",
            str(run.ids_file),
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(run.config.seconds),
            "--warmup",
            str(run.config.warmup_seconds),
        ]
        if run.cassandra_pid is not None:
            command += ["--cassandra-pid", str(run.cassandra_pid)]
        completed = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=run.config.seconds + run.config.warmup_seconds + 180,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{module} exited {completed.returncode}:\n{completed.stderr[-3000:]}"
            )
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        if result["reads"]:
            result["client_cpu_us_per_read"] = round(
                1e6 * result["cpu_seconds"]["client"] / result["reads"], 1
            )
        entries.append(result)
        say(
            f"{kind} c={concurrency}: {result['reads_per_second']:,.0f} reads/s, "
            f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, {result['errors']} errors; "
            "cpu s: " + ", ".join(f"{k} {v:.1f}" for k, v in result["cpu_seconds"].items())
        )
        if result["errors"]:
            run.notes.append(
                f"{kind} c={concurrency}: {result['errors']} errors ({result.get('first_error')})"
            )
    run.ceilings[kind] = entries


# ---------------------------------------------------------------------------------------------
# Tracing cost


def tracing_phase(run: Run) -> None:
    """get_user with tracing off, on and sampled, in alternating rounds.

    One configuration after the other would put minutes between the measurements the tracing cost
    compares, and this machine's throughput drifts over minutes by more than that cost. So each
    configuration is measured `tracing_rounds` times for a share of the time, the configurations
    taking turns, and its rounds are combined (`combine_rounds`).
    """
    receiver = start_receiver(run.config.collector, run.work_dir / "receiver")
    say(f"tracing: exporting to {receiver.description} at {receiver.endpoint}")
    if receiver.kind == "sink":
        run.notes.append(f"tracing exported to {receiver.description}")
    rounds = run.config.tracing_rounds
    seconds = max(1, round(run.config.seconds / rounds))
    measured: dict[str, list[dict[str, Any]]] = {mode: [] for mode, _ in TRACING_CONFIGURATIONS}
    try:
        for number in range(1, rounds + 1):
            for mode, extra in TRACING_CONFIGURATIONS:
                say(f"tracing round {number}/{rounds}: {mode}, {seconds} s")
                measured[mode].append(_measure_tracing(run, receiver, mode, extra, seconds))
    finally:
        receiver.stop()
    configurations = []
    for mode, entries in measured.items():
        entry = combine_rounds(entries)
        _check_spans(run, mode, entry)
        run.scenarios.append(entry)
        configurations.append(entry)
    run.tracing = {
        "receiver": receiver.description,
        "rounds": rounds,
        "configurations": configurations,
    }


def _measure_tracing(
    run: Run, receiver: Receiver, mode: str, extra: dict[str, str], seconds: int
) -> dict[str, Any]:
    env = dict(extra)
    if mode not in {"off", "default"}:
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_SERVICE_NAME": "cqlstar-bench",
        }
    spans_before = receiver.spans_settled(quiet_s=0.5)
    server = serve(
        f"service_tracing_{mode}",
        SERVICE_FACTORY,
        run.service_env(env),
        run.log_dir,
        workers=run.config.workers,
    )
    try:
        warmup_requests = warm_up(run, server, READ_BY_KEY)
        entry = measure_http(
            run,
            server,
            READ_BY_KEY,
            run.config.tracing_concurrency,
            label=f"{READ_BY_KEY}_tracing_{mode}",
            extra_roots={"receiver": receiver.pid},
            seconds=seconds,
        )
    finally:
        stop(server)  # shutdown flushes the spans still queued
    entry["spans_received"] = receiver.spans_settled() - spans_before
    # Every request the server answered (warm-up included) should arrive as a server span and a
    # query span when sampled.
    entry["requests_served"] = warmup_requests + entry["requests"]
    entry["environment"] = " ".join(
        f"{k}={v}" for k, v in sorted(env.items()) if k != "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return entry


def combine_rounds(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's rounds as one entry of the same shape.

    Counts, time and CPU are added up, so requests per second and CPU per request are over all
    rounds; the latency percentiles are the median of the rounds' (wrk reports percentiles, not
    the latencies they come from, so they cannot be merged exactly); the maximum is the largest.
    """
    combined = dict(entries[0])
    requests = sum(e["requests"] for e in entries)
    duration = sum(e["duration_s"] for e in entries)
    cpu = {
        key: sum(e["cpu_seconds"].get(key, 0.0) for e in entries) for key in combined["cpu_seconds"]
    }
    served = sum(e["requests_served"] for e in entries)
    spans = sum(e["spans_received"] for e in entries)
    spent = sum(cpu.values())
    combined |= {
        "rounds": len(entries),
        "requests": requests,
        "duration_s": duration,
        "requests_per_second": requests / duration if duration else 0.0,
        "p50_ms": statistics.median(e["p50_ms"] for e in entries),
        "p90_ms": statistics.median(e["p90_ms"] for e in entries),
        "p99_ms": statistics.median(e["p99_ms"] for e in entries),
        "max_ms": max(e["max_ms"] for e in entries),
        "mean_ms": sum(e["mean_ms"] * e["requests"] for e in entries) / requests
        if requests
        else 0.0,
        "errors": sum(e["errors"] for e in entries),
        "status_errors": sum(e["status_errors"] for e in entries),
        "socket_errors": sum(e["socket_errors"] for e in entries),
        "timeouts": sum(e["timeouts"] for e in entries),
        "cpu_seconds": cpu,
        "cpu_cores": {k: round(v / duration, 2) for k, v in cpu.items()} if duration else {},
        "load_generator_cpu_share": round(cpu["load_generator"] / spent, 3) if spent else None,
        "service_cpu_us_per_request": round(1e6 * cpu["service"] / requests, 1)
        if requests and "service" in cpu
        else None,
        "requests_served": served,
        "spans_received": spans,
        "spans_per_request": round(spans / served, 3) if served else None,
    }
    return combined


def _check_spans(run: Run, mode: str, entry: dict[str, Any]) -> None:
    say(
        f"{entry['name']} over {entry['rounds']} rounds: {entry['requests_per_second']:,.0f} "
        f"req/s, {entry['service_cpu_us_per_request']} µs of service CPU per request; the "
        f"receiver got {entry['spans_received']:,} spans ({entry['spans_per_request']} per request)"
    )
    # Far fewer spans than requests at 100% sampling means the service dropped spans it could not
    # export, and the configuration understates tracing's cost.
    if (
        mode == "on"
        and entry["requests_served"]
        and entry["spans_received"] < entry["requests_served"]
    ):
        run.notes.append(
            f"tracing on: the receiver got {entry['spans_received']:,} spans for "
            f"{entry['requests_served']:,} requests (each should give a server and a query span): "
            "the service dropped spans it could not export, so this configuration understates "
            "tracing's full cost"
        )


# ---------------------------------------------------------------------------------------------
# Report


def command_line() -> str:
    assignments = [
        f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_") and v.strip()
    ]
    return " ".join([*assignments, "just bench"])


def build_report(run: Run, started_at: str) -> dict[str, Any]:
    config = run.config
    ref = config.reference_concurrency
    ceilings: dict[str, Any] = {
        "reference_concurrency": ref,
        "raw_driver_reads_per_second": reporting.ceiling_value(
            run.ceilings.get("raw_driver", []), ref, "reads_per_second"
        ),
        "async_layer_reads_per_second": reporting.ceiling_value(
            run.ceilings.get("async_layer", []), ref, "reads_per_second"
        ),
        "http_floor_requests_per_second": reporting.ceiling_value(
            run.ceilings.get("http_floor", []), ref, "requests_per_second"
        ),
        **run.ceilings,
    }
    ratios = reporting.compute_ratios(run.scenarios, ceilings, ref)
    return {
        "started_at": started_at,
        "duration_s": round(time.monotonic() - _STARTED, 1),
        "command": command_line(),
        "settings": config.as_dict(),
        "machine": machine_facts(),
        "cassandra_version": run.cassandra_version,
        "load_generator": wrk_version(run.wrk) if run.wrk else None,
        "scenarios": run.scenarios,
        "ceilings": ceilings,
        "ratios": ratios,
        "targets": reporting.evaluate_targets(ratios),
        "streaming": run.streaming,
        "slow_readers": run.slow_readers,
        "tracing": run.tracing,
        "notes": run.notes,
        "failed_phases": run.failed_phases,
    }


def clear_output(output: Path) -> None:
    for name in ("report.json", "report.md", "report.png"):
        (output / name).unlink(missing_ok=True)
    for name in ("work", "logs"):
        shutil.rmtree(output / name, ignore_errors=True)


def main() -> int:
    config = BenchConfig.from_env()
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    clear_output(config.output)
    run = Run(config)
    say(
        f"{len(config.scenarios)} scenario group(s), {config.seconds} s per measurement at "
        f"concurrency {', '.join(map(str, config.concurrency))}; output in {config.output}"
    )
    run.phase("provision", lambda: provision(run))
    if "provision" not in run.failed_phases:
        run.phase(READ_BY_KEY, lambda: service_phase(run, (READ_BY_KEY,), stream=False))
        if config.wants("raw_driver"):
            run.phase(
                "raw_driver", lambda: ceiling_phase(run, "raw_driver", "bench.harness.raw_driver")
            )
        if config.wants("async_layer"):
            run.phase(
                "async_layer",
                lambda: ceiling_phase(run, "async_layer", "bench.harness.layer_reads"),
            )
        if config.wants("tracing"):
            run.phase("tracing", lambda: tracing_phase(run))
        if config.wants("http_floor"):
            run.phase("http_floor", lambda: floor_phase(run))
        if config.wants("auth"):
            from bench.auth import auth_phase  # it imports this module

            run.phase("auth", lambda: auth_phase(run))
        if config.wants("limits"):
            from bench.limits import limits_phase  # it imports this module

            run.phase("limits", lambda: limits_phase(run))
        if config.wants("websocket"):
            from bench.websocket import websocket_phase  # it imports this module

            run.phase("websocket", lambda: websocket_phase(run))
        rest = tuple(name for name in HTTP_SCENARIOS if name != READ_BY_KEY)
        run.phase("service", lambda: service_phase(run, rest, stream=True))
    report = build_report(run, started_at)
    if drawing_notes := reporting.write_report(report, config.output):
        # The PNG is drawn from the written JSON; what went wrong drawing it goes in afterwards.
        report["notes"] = [*report["notes"], *drawing_notes]
        (config.output / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (config.output / "report.md").write_text(reporting.render_markdown(report))
    summarise(report, config.output)
    return 1 if run.failed_phases else 0


def summarise(report: dict[str, Any], output: Path) -> None:
    say(f"report: {output / 'report.md'} (+ report.json, report.png)")
    for target in report["targets"]:
        value = target["value"]
        shown = "not measured" if value is None else f"{value:,.3f}"
        verdict = {True: "met", False: "NOT met", None: ""}[target["met"]]
        say(f"  {target['target']}: {shown} (goal {target['goal']}) {verdict}")
    if report["failed_phases"]:
        say(f"failed phases: {', '.join(report['failed_phases'])}")


if __name__ == "__main__":
    sys.exit(main())
