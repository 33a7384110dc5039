"""Measuring one HTTP scenario with wrk against a served app, and combining alternating rounds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from bench.harness.console import say
from bench.harness.procs import CpuMeter
from bench.harness.scenarios import SCENARIOS
from bench.harness.server import Server, request
from bench.harness.wrk import WrkResult, compose_script, run_wrk
from bench.pipeline.context import RunContext
from bench.pipeline.report import ScenarioEntry


def probe(ctx: RunContext, server: Server, name: str) -> None:
    """One request of the scenario, so a missing route fails before anything is measured."""
    method, path, body, expected = SCENARIOS[name].probe
    url = server.base_url + (path or f"/users/{ctx.dataset.first_id}")
    status, text = request(url, method, body, timeout_s=30)
    if status != expected:
        raise RuntimeError(
            f"{name}: {method} {url} answered {status} (expected {expected}): {text[:300]!r}"
        )


@dataclass(frozen=True)
class WrkLoad:
    """What wrk sends: a script of `bench/lua/`, the URL path, the script's arguments."""

    script: str
    path: str = "/"
    script_args: tuple[str, ...] = ()


def scenario_load(ctx: RunContext, name: str) -> WrkLoad:
    """The load of one of the harness's scenarios (`bench.harness.scenarios`)."""
    scenario = SCENARIOS[name]
    ids = (str(ctx.dataset.ids_file),) if scenario.needs_ids else ()
    return WrkLoad(scenario.script, scenario.path, ids)


def wrk_once(
    ctx: RunContext, server: Server, load: WrkLoad, concurrency: int, seconds: int
) -> WrkResult:
    return run_wrk(
        ctx.wrk,
        server.base_url + load.path,
        compose_script(load.script, ctx.config.work_dir),
        connections=concurrency,
        seconds=seconds,
        threads=min(ctx.config.wrk_threads, concurrency),
        script_args=load.script_args,
    )


def http_entry(
    name: str, concurrency: int, result: WrkResult, cpu: dict[str, float]
) -> ScenarioEntry:
    cpu_seconds = {**cpu, "load_generator": result.load_generator_cpu_s}
    spent = sum(cpu_seconds.values())
    return ScenarioEntry(
        name=name,
        concurrency=concurrency,
        requests_per_second=result.requests_per_second,
        p50_ms=result.p50_ms,
        p90_ms=result.p90_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        errors=result.errors,
        requests=result.requests,
        duration_s=result.duration_s,
        mean_ms=result.mean_ms,
        status_errors=result.status_errors,
        socket_errors=result.socket_errors,
        timeouts=result.timeouts,
        cpu_seconds=cpu_seconds,
        cpu_cores=_cores(cpu_seconds, result.duration_s),
        load_generator_cpu_share=round(result.load_generator_cpu_s / spent, 3) if spent else None,
        service_cpu_us_per_request=_per_request(cpu_seconds, result.requests),
    )


def measured_load(
    ctx: RunContext,
    server: Server,
    load: WrkLoad,
    concurrency: int,
    seconds: int,
    *,
    label: str,
    extra_roots: dict[str, int | None] | None = None,
) -> tuple[ScenarioEntry, WrkResult]:
    """wrk's figures with the CPU the service, Cassandra (and `extra_roots`) spent meanwhile."""
    roots = {"service": server.pid, "cassandra": ctx.dataset.cassandra_pid, **(extra_roots or {})}
    meter = CpuMeter(roots)
    meter.start()
    result = wrk_once(ctx, server, load, concurrency, seconds)
    return http_entry(label, concurrency, result, meter.stop()), result


def measure_http(
    ctx: RunContext,
    server: Server,
    name: str,
    concurrency: int,
    *,
    label: str | None = None,
    extra_roots: dict[str, int | None] | None = None,
    seconds: int | None = None,
) -> ScenarioEntry:
    """One of the harness's scenarios, measured and said on the console; errors are noted."""
    label = label or name
    load = scenario_load(ctx, name)
    entry, result = measured_load(
        ctx,
        server,
        load,
        concurrency,
        seconds or ctx.config.seconds,
        label=label,
        extra_roots=extra_roots,
    )
    say(
        f"{label} c={concurrency}: {result.requests_per_second:,.0f} req/s, "
        f"p50 {result.p50_ms:.2f} ms, p90 {result.p90_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"max {result.max_ms:.1f} ms, {result.errors} errors; cpu cores: "
        + ", ".join(f"{k} {v:.2f}" for k, v in entry.cpu_cores.items())
    )
    if result.errors:
        ctx.note(
            f"{label} c={concurrency}: {result.errors} errors of {result.requests} "
            f"(status {result.status_errors}, socket {result.socket_errors}, timeouts {result.timeouts})"
        )
    return entry


def warm_up(ctx: RunContext, server: Server, load: WrkLoad) -> int:
    """Unmeasured load on a fresh server; returns how many requests it sent."""
    if ctx.config.warmup_seconds <= 0:
        return 0
    concurrency = ctx.config.reference_concurrency
    return wrk_once(ctx, server, load, concurrency, ctx.config.warmup_seconds).requests


def combine_rounds(entries: Sequence[ScenarioEntry]) -> ScenarioEntry:
    """One configuration's rounds as one entry of the same shape.

    Counts, time and CPU are added up, so requests per second and CPU per request are over all
    rounds; the latency percentiles are the median of the rounds' (wrk reports percentiles, not
    the latencies they come from, so they cannot be merged exactly); the maximum is the largest.
    """
    first = entries[0]
    requests = sum(e.requests for e in entries)
    duration = sum(e.duration_s for e in entries)
    cpu = {key: sum(e.cpu_seconds.get(key, 0.0) for e in entries) for key in first.cpu_seconds}
    served = sum(e.requests_served or 0 for e in entries)
    spans = sum(e.spans_received or 0 for e in entries)
    spent = sum(cpu.values())
    return msgspec.structs.replace(
        first,
        rounds=len(entries),
        requests=requests,
        duration_s=duration,
        requests_per_second=requests / duration if duration else 0.0,
        p50_ms=statistics.median(e.p50_ms for e in entries),
        p90_ms=statistics.median(e.p90_ms for e in entries),
        p99_ms=statistics.median(e.p99_ms for e in entries),
        max_ms=max(e.max_ms for e in entries),
        mean_ms=sum(e.mean_ms * e.requests for e in entries) / requests if requests else 0.0,
        errors=sum(e.errors for e in entries),
        status_errors=sum(e.status_errors for e in entries),
        socket_errors=sum(e.socket_errors for e in entries),
        timeouts=sum(e.timeouts for e in entries),
        cpu_seconds=cpu,
        cpu_cores=_cores(cpu, duration),
        load_generator_cpu_share=round(cpu["load_generator"] / spent, 3) if spent else None,
        service_cpu_us_per_request=_per_request(cpu, requests),
        requests_served=served,
        spans_received=spans,
        spans_per_request=round(spans / served, 3) if served else None,
    )


def _cores(cpu_seconds: dict[str, float], duration_s: float) -> dict[str, float]:
    if not duration_s:
        return {}
    return {k: round(v / duration_s, 2) for k, v in cpu_seconds.items()}


def _per_request(cpu_seconds: dict[str, float], requests: int) -> float | None:
    if not requests or "service" not in cpu_seconds:
        return None
    return round(1e6 * cpu_seconds["service"] / requests, 1)
