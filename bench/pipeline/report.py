"""The report `just bench` writes: msgspec Structs, encoded to `report.json` and decoded back by
the Markdown and the plot (`msgspec.json.decode(..., type=Report)`).

A field that does not apply to an entry is left out of the JSON (`omit_defaults`): a scenario
measured once has no `rounds`, a run without the tracing phase has no `tracing`.
"""

from __future__ import annotations

import msgspec

from bench.harness.ceiling import CeilingResult
from bench.harness.config import Settings
from bench.harness.machine import Machine
from bench.pipeline.websocket_figures import WebSocketFigures


class ScenarioEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One HTTP scenario under wrk at one concurrency (or one configuration over its rounds)."""

    name: str
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    requests: int
    duration_s: float
    mean_ms: float
    status_errors: int
    socket_errors: int
    timeouts: int
    # CPU seconds during the measurement: "service" (granian's tree), "cassandra" (the local
    # node), "load_generator" (wrk), "receiver" (the span receiver, in the tracing phase).
    cpu_seconds: dict[str, float]
    cpu_cores: dict[str, float]
    load_generator_cpu_share: float | None
    # CPU per request holds still on a busy machine, where requests per second do not.
    service_cpu_us_per_request: float | None
    # Set on configurations measured in alternating rounds (tracing, auth, limits).
    rounds: int | None = None
    requests_served: int | None = None
    spans_received: int | None = None
    spans_per_request: float | None = None
    environment: str | None = None


class Ceilings(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the service is compared with, and their figures at the reference concurrency."""

    reference_concurrency: int
    raw_driver_reads_per_second: float | None
    async_layer_reads_per_second: float | None
    http_floor_requests_per_second: float | None
    raw_driver: tuple[CeilingResult, ...] = ()
    async_layer: tuple[CeilingResult, ...] = ()
    http_floor: tuple[ScenarioEntry, ...] = ()


class Ratios(msgspec.Struct, frozen=True, kw_only=True):
    """The comparisons the project's goals speak of, at the reference concurrency (None: not
    measured). `*_cost` is throughput lost, `*_cpu_cost` CPU per request added."""

    get_user_cpu_efficiency_vs_raw_driver: float | None = None
    async_layer_cpu_efficiency_vs_raw_driver: float | None = None
    get_user_vs_raw_driver: float | None = None
    get_user_vs_http_floor: float | None = None
    async_layer_vs_raw_driver: float | None = None
    get_user_vs_async_layer: float | None = None
    get_user_p99_over_p50: float | None = None
    tracing_default_cost: float | None = None
    tracing_on_cost: float | None = None
    tracing_sampled_cost: float | None = None
    tracing_default_cpu_cost: float | None = None
    tracing_on_cpu_cost: float | None = None
    tracing_sampled_cpu_cost: float | None = None
    stream_rows_per_second: float | None = None
    # Requests per second with a reused token over without authentication (the auth phase).
    auth_token_vs_open: float | None = None
    # The limits phase: token + Redis rate limit over plain, and over token alone.
    limits_token_limited_vs_plain: float | None = None
    limits_token_limited_vs_token: float | None = None


class Target(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # the field of `Ratios`
    target: str
    goal: str
    value: float | None
    met: bool | None


class StreamFigures(msgspec.Struct, frozen=True, kw_only=True):
    """`stream_users`: one client reading NDJSON streams back to back, and the service's memory."""

    rows_per_second: float
    streams_per_second: float
    rows_per_stream: int
    fetch_size: int
    streams: int
    # Seconds a whole stream took, as milliseconds (median and tail over the streams).
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_row_ms: float
    errors: int
    duration_s: float
    baseline_rss_mb: float
    peak_rss_mb: float
    # Peak RSS growth over the baseline at a tenth of the rows and at all of them, by row count.
    rss_growth_mb_by_rows: dict[str, float]
    # A finished stream that leaves memory behind (a page kept alive by a reference cycle, say)
    # shows here rather than in the peaks: each stream's own peak can stay flat.
    rss_after_first_stream_mb: float
    rss_after_last_stream_mb: float
    streams_after_first: int
    cpu_seconds: dict[str, float]


class SlowReaderFigures(msgspec.Struct, frozen=True, kw_only=True):
    """`slow_readers`: stalled and slow stream clients held open, and the service's memory."""

    stalled: int
    slow: int
    fetch_size: int
    hold_s: float
    statuses: dict[str, int]
    baseline_rss_mb: float
    held_rss_mb: float
    peak_rss_mb: float
    after_close_rss_mb: float
    growth_per_open_stream_mb: float | None
    page_kib: float | None
    growth_per_open_stream_pages: float | None
    slow_reader_kib_per_s: float
    health_p50_ms: float | None
    health_max_ms: float | None
    health_failures: int


class TracingFigures(msgspec.Struct, frozen=True, kw_only=True):
    receiver: str
    rounds: int
    configurations: tuple[ScenarioEntry, ...]


class AlternatingRounds(msgspec.Struct, frozen=True, kw_only=True):
    """Configurations of the same app that took turns (auth, limits), combined per configuration."""

    rounds: int
    concurrency: int
    configurations: tuple[ScenarioEntry, ...]


class Sections(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The parts of the report only some phases measure (None: not measured in this run)."""

    streaming: StreamFigures | None = None
    slow_readers: SlowReaderFigures | None = None
    tracing: TracingFigures | None = None
    auth: AlternatingRounds | None = None
    limits: AlternatingRounds | None = None
    websocket: WebSocketFigures | None = None


class Report(Sections, frozen=True, kw_only=True, omit_defaults=True):
    started_at: str
    duration_s: float
    command: str
    settings: Settings
    machine: Machine
    cassandra_version: str
    load_generator: str | None
    # Every wrk measurement in the order it was taken (tracing, auth and limits included).
    scenarios: tuple[ScenarioEntry, ...]
    ceilings: Ceilings
    ratios: Ratios
    targets: tuple[Target, ...]
    notes: tuple[str, ...] = ()
    failed_phases: tuple[str, ...] = ()


def encode(report: Report) -> bytes:
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"


def decode(data: bytes) -> Report:
    return msgspec.json.decode(data, type=Report)
