"""The ceilings without HTTP: the raw driver and the async layer reading by key, each in its own
process (`bench.harness.raw_driver`, `bench.harness.layer_reads`) at every concurrency."""

from __future__ import annotations

import sys

from bench.harness.ceiling import CeilingResult
from bench.harness.children import run_json_child
from bench.harness.console import say
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings


def raw_driver(ctx: RunContext) -> Findings:
    return Findings(raw_driver=_measure(ctx, "raw_driver", "bench.harness.raw_driver"))


def async_layer(ctx: RunContext) -> Findings:
    return Findings(async_layer=_measure(ctx, "async_layer", "bench.harness.layer_reads"))


def _measure(ctx: RunContext, kind: str, module: str) -> tuple[CeilingResult, ...]:
    config, dataset = ctx.config, ctx.dataset
    entries = []
    for concurrency in config.concurrency:
        command = [
            *(sys.executable, "-m", module),
            *("--hosts", ",".join(dataset.hosts), "--port", str(dataset.port)),
            *("--keyspace", config.keyspace, "--ids", str(dataset.ids_file)),
            *("--concurrency", str(concurrency), "--seconds", str(config.seconds)),
            *("--warmup", str(config.warmup_seconds)),
        ]
        if dataset.cassandra_pid is not None:
            command += ["--cassandra-pid", str(dataset.cassandra_pid)]
        timeout = config.seconds + config.warmup_seconds + 180
        result = run_json_child(command, CeilingResult, what=module, timeout_s=timeout)
        entries.append(result)
        say(
            f"{kind} c={concurrency}: {result.reads_per_second:,.0f} reads/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, {result.errors} errors; "
            "cpu s: " + ", ".join(f"{k} {v:.1f}" for k, v in result.cpu_seconds.items())
        )
        if result.errors:
            ctx.note(f"{kind} c={concurrency}: {result.errors} errors ({result.first_error})")
    return tuple(entries)
