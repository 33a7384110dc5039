"""The ratios the project's goals speak of, and which goals a run met.

Taken at the reference concurrency (64, or the measured level closest to it), from the report's
own entries, so they are unit-tested without running anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from bench.harness.ceiling import CeilingResult
from bench.pipeline.report import (
    AlternatingRounds,
    Ceilings,
    Ratios,
    ScenarioEntry,
    StreamFigures,
    Target,
)

# The targets: (field of `Ratios`, human wording, goal, comparison).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("get_user_vs_raw_driver", "get_user / raw-driver ceiling", 0.60, ">="),
    ("async_layer_vs_raw_driver", "async layer / raw-driver ceiling", 0.80, ">="),
    ("get_user_p99_over_p50", "get_user p99 / p50", 3.0, "<"),
    ("tracing_default_cost", "throughput lost to telemetry with no exporter", 0.05, "<"),
    ("tracing_sampled_cost", "throughput lost to tracing exported at 10%", 0.10, "<"),
    ("stream_rows_per_second", "streaming rows/s", 100_000.0, ">="),
)
TRACING_MODES = ("off", "default", "on", "sampled")
E = TypeVar("E", CeilingResult, ScenarioEntry)


def find(
    entries: Iterable[ScenarioEntry], name: str, concurrency: int | None = None
) -> ScenarioEntry | None:
    for entry in entries:
        if entry.name == name and (concurrency is None or entry.concurrency == concurrency):
            return entry
    return None


def at_concurrency(entries: Sequence[E], concurrency: int) -> E | None:
    return next((e for e in entries if e.concurrency == concurrency), None)


def ceilings(
    reference_concurrency: int,
    raw_driver: tuple[CeilingResult, ...],
    async_layer: tuple[CeilingResult, ...],
    http_floor: tuple[ScenarioEntry, ...],
) -> Ceilings:
    raw = at_concurrency(raw_driver, reference_concurrency)
    layer = at_concurrency(async_layer, reference_concurrency)
    floor = at_concurrency(http_floor, reference_concurrency)
    return Ceilings(
        reference_concurrency=reference_concurrency,
        raw_driver_reads_per_second=(raw.reads_per_second or None) if raw else None,
        async_layer_reads_per_second=(layer.reads_per_second or None) if layer else None,
        http_floor_requests_per_second=(floor.requests_per_second or None) if floor else None,
        raw_driver=raw_driver,
        async_layer=async_layer,
        http_floor=http_floor,
    )


def compute_ratios(
    scenarios: Sequence[ScenarioEntry],
    ceilings: Ceilings,
    streaming: StreamFigures | None = None,
    auth: AlternatingRounds | None = None,
    limits: AlternatingRounds | None = None,
) -> Ratios:
    ref = ceilings.reference_concurrency
    get_user = find(scenarios, "get_user", ref)
    rps = get_user.requests_per_second if get_user else None
    raw = ceilings.raw_driver_reads_per_second
    layer = ceilings.async_layer_reads_per_second
    tracing = {m: e for m in TRACING_MODES if (e := find(scenarios, f"get_user_tracing_{m}"))}
    rate = {m: e.requests_per_second for m, e in tracing.items()}
    cpu = {m: e.service_cpu_us_per_request for m, e in tracing.items()}
    # CPU spent per request holds still when other work shares the machine; throughput does not.
    raw_cpu = _client_cpu(ceilings.raw_driver, ref)
    get_user_cpu = get_user.service_cpu_us_per_request if get_user else None
    return Ratios(
        get_user_cpu_efficiency_vs_raw_driver=_ratio(raw_cpu, get_user_cpu),
        async_layer_cpu_efficiency_vs_raw_driver=_ratio(
            raw_cpu, _client_cpu(ceilings.async_layer, ref)
        ),
        get_user_vs_raw_driver=_ratio(rps, raw),
        get_user_vs_http_floor=_ratio(rps, ceilings.http_floor_requests_per_second),
        async_layer_vs_raw_driver=_ratio(layer, raw),
        get_user_vs_async_layer=_ratio(rps, layer),
        get_user_p99_over_p50=_ratio(get_user.p99_ms, get_user.p50_ms) if get_user else None,
        tracing_default_cost=_cost(rate.get("default"), rate.get("off")),
        tracing_on_cost=_cost(rate.get("on"), rate.get("off")),
        tracing_sampled_cost=_cost(rate.get("sampled"), rate.get("off")),
        tracing_default_cpu_cost=_growth(cpu.get("default"), cpu.get("off")),
        tracing_on_cpu_cost=_growth(cpu.get("on"), cpu.get("off")),
        tracing_sampled_cpu_cost=_growth(cpu.get("sampled"), cpu.get("off")),
        stream_rows_per_second=streaming.rows_per_second if streaming else None,
        auth_token_vs_open=_rounds_ratio(auth, "auth", "open"),
        limits_token_limited_vs_plain=_rounds_ratio(limits, "token_limited", "plain"),
        limits_token_limited_vs_token=_rounds_ratio(limits, "token_limited", "token"),
    )


def evaluate_targets(ratios: Ratios) -> tuple[Target, ...]:
    results = []
    for key, wording, goal, comparison in TARGETS:
        value: float | None = getattr(ratios, key)
        met = None if value is None else (value >= goal if comparison == ">=" else value < goal)
        results.append(
            Target(key=key, target=wording, goal=f"{comparison} {goal:g}", value=value, met=met)
        )
    return tuple(results)


def _client_cpu(entries: Sequence[CeilingResult], concurrency: int) -> float | None:
    entry = at_concurrency(entries, concurrency)
    return (entry.client_cpu_us_per_read or None) if entry else None


def _rounds_ratio(figures: AlternatingRounds | None, mode: str, against: str) -> float | None:
    if figures is None:
        return None
    rate = {e.name: e.requests_per_second for e in figures.configurations}
    return _ratio(rate.get(f"get_user_{mode}"), rate.get(f"get_user_{against}"))


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _cost(with_feature: float | None, without: float | None) -> float | None:
    if with_feature is None or not without:
        return None
    return round(1 - with_feature / without, 3)


def _growth(with_feature: float | None, without: float | None) -> float | None:
    if with_feature is None or not without:
        return None
    return round(with_feature / without - 1, 3)
