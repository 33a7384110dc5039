"""What telemetry costs `get_user`: tracing off, the default (no exporter), every trace exported to
a collector, and 10% of traces exported, taking turns in rounds.

One configuration after the other would put minutes between the measurements the tracing cost
compares, and this machine's throughput drifts over minutes by more than that cost. So each
configuration is measured `tracing_rounds` times for a share of the time, the configurations
taking turns, and its rounds are combined (`combine_rounds`).
"""

from __future__ import annotations

import msgspec

from bench.harness.collector import Receiver, start_receiver
from bench.harness.console import say
from bench.harness.scenarios import READ_BY_KEY
from bench.harness.server import SERVICE_FACTORY, serve, stop
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.http import combine_rounds, measure_http, scenario_load, warm_up
from bench.pipeline.report import ScenarioEntry, TracingFigures

CONFIGURATIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("off", {"OTEL_SDK_DISABLED": "true"}),
    # The `just serve` default: no exporter configured, so no spans; the metrics still count.
    ("default", {}),
    ("on", {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}),
    (
        "sampled",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
)


def tracing(ctx: RunContext) -> Findings:
    receiver = start_receiver(ctx.config.collector, ctx.config.work_dir / "receiver")
    say(f"tracing: exporting to {receiver.description} at {receiver.endpoint}")
    if receiver.kind == "sink":
        ctx.note(f"tracing exported to {receiver.description}")
    rounds = ctx.config.tracing_rounds
    seconds = max(1, round(ctx.config.seconds / rounds))
    measured: dict[str, list[ScenarioEntry]] = {mode: [] for mode, _ in CONFIGURATIONS}
    try:
        for number in range(1, rounds + 1):
            for mode, extra in CONFIGURATIONS:
                say(f"tracing round {number}/{rounds}: {mode}, {seconds} s")
                measured[mode].append(_measure(ctx, receiver, mode, extra, seconds))
    finally:
        receiver.stop()
    configurations = []
    for mode, entries in measured.items():
        entry = combine_rounds(entries)
        _check_spans(ctx, mode, entry)
        configurations.append(entry)
    figures = TracingFigures(
        receiver=receiver.description, rounds=rounds, configurations=tuple(configurations)
    )
    return Findings(scenarios=figures.configurations, tracing=figures)


def _measure(
    ctx: RunContext, receiver: Receiver, mode: str, extra: dict[str, str], seconds: int
) -> ScenarioEntry:
    env = dict(extra)
    if mode not in {"off", "default"}:
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_SERVICE_NAME": "cqlstar-bench",
        }
    spans_before = receiver.spans_settled(quiet_s=0.5)
    config = ctx.config
    server = serve(
        f"service_tracing_{mode}",
        SERVICE_FACTORY,
        ctx.service_env(env),
        config.log_dir,
        workers=config.workers,
    )
    try:
        warmup_requests = warm_up(ctx, server, scenario_load(ctx, READ_BY_KEY))
        entry = measure_http(
            ctx,
            server,
            READ_BY_KEY,
            config.tracing_concurrency,
            label=f"{READ_BY_KEY}_tracing_{mode}",
            extra_roots={"receiver": receiver.pid},
            seconds=seconds,
        )
    finally:
        stop(server)  # shutdown flushes the spans still queued
    return msgspec.structs.replace(
        entry,
        spans_received=receiver.spans_settled() - spans_before,
        # Every request the server answered (warm-up included) should arrive as a server span
        # and a query span when sampled.
        requests_served=warmup_requests + entry.requests,
        environment=" ".join(
            f"{k}={v}" for k, v in sorted(env.items()) if k != "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )


def _check_spans(ctx: RunContext, mode: str, entry: ScenarioEntry) -> None:
    say(
        f"{entry.name} over {entry.rounds} rounds: {entry.requests_per_second:,.0f} "
        f"req/s, {entry.service_cpu_us_per_request} µs of service CPU per request; the "
        f"receiver got {entry.spans_received:,} spans ({entry.spans_per_request} per request)"
    )
    # Far fewer spans than requests at 100% sampling means the service dropped spans it could not
    # export, and the configuration understates tracing's cost.
    served, spans = entry.requests_served or 0, entry.spans_received or 0
    if mode == "on" and served and spans < served:
        ctx.note(
            f"tracing on: the receiver got {spans:,} spans for {served:,} requests (each should "
            "give a server and a query span): the service dropped spans it could not export, so "
            "this configuration understates tracing's full cost"
        )
