"""The collector configuration, exercised with the real ocb-built binary.

Spans are produced with the OpenTelemetry SDK directly (not the service's
tracing setup) so these tests pin down the collector side alone: what goes
in over OTLP must come out unchanged, and span metrics must carry the
dimensions dashboards rely on.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelcol import (
    BASE_CONFIG,
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    TEST_OVERLAY,
    ExportedSpan,
    MetricPoint,
    RunningCollector,
    require_collector_binary,
    run_collector,
)

pytestmark = pytest.mark.integration

SERVICE_NAME = "cqlstar-collector-test"
ROUTE = "/users/{user_id}"
SERVER_SPAN = f"GET {ROUTE}"
DB_SPAN = "SELECT cqlstar.users"
CALLS = "traces.span.metrics.calls"
DURATION = "traces.span.metrics.duration"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    with run_collector(tmp_path / "otelcol") as col:
        yield col


def _validate(binary: Path, *configs: Path, env: dict[str, str] | None = None) -> None:
    args = [str(binary), "validate"]
    for config in configs:
        args += ["--config", str(config)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_config_is_valid() -> None:
    _validate(require_collector_binary(), BASE_CONFIG)


def test_test_overlay_is_valid(tmp_path: Path) -> None:
    # The overlay requires its variables (no defaults), so give it some.
    env = {
        "PATH": "/usr/bin:/bin",
        "OTELCOL_OTLP_GRPC_PORT": "4317",
        "OTELCOL_OTLP_HTTP_PORT": "4318",
        "OTELCOL_HEALTH_PORT": "13133",
        "OTELCOL_PROMETHEUS_PORT": "8889",
        "OTELCOL_TRACES_FILE": str(tmp_path / "t.jsonl"),
        "OTELCOL_METRICS_FILE": str(tmp_path / "m.jsonl"),
        "OTELCOL_LOGS_FILE": str(tmp_path / "l.jsonl"),
    }
    _validate(require_collector_binary(), BASE_CONFIG, TEST_OVERLAY, env=env)


def _send_request_trace(endpoint: str) -> tuple[str, str, str]:
    """Emit one HTTP request span with a Cassandra query inside it.

    Returns (trace_id, server_span_id, db_span_id) as lowercase hex.
    """
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    # A private provider: the global one belongs to whatever else runs in
    # this process, and must not be replaced by a test.
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10))
    )
    tracer = provider.get_tracer("tests.deploy.test_collector")
    try:
        with (
            tracer.start_as_current_span(
                SERVER_SPAN,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": "GET",
                    "http.route": ROUTE,
                    "url.path": "/users/42",
                    "http.response.status_code": 200,
                },
            ) as server,
            tracer.start_as_current_span(
                DB_SPAN,
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": "cassandra",
                    "db.namespace": "cqlstar",
                    "db.operation.name": "SELECT",
                    "db.collection.name": "users",
                    "db.query.text": "SELECT * FROM cqlstar.users WHERE user_id = ?",
                },
            ) as db,
        ):
            time.sleep(0.005)  # a measurable duration for the histogram
        assert provider.force_flush(timeout_millis=10_000), "SDK could not export spans"
    finally:
        provider.shutdown()
    server_ctx, db_ctx = server.get_span_context(), db.get_span_context()
    return (
        f"{server_ctx.trace_id:032x}",
        f"{server_ctx.span_id:016x}",
        f"{db_ctx.span_id:016x}",
    )


def _ours(spans: list[ExportedSpan]) -> dict[str, ExportedSpan]:
    return {s.name: s for s in spans if s.resource.get("service.name") == SERVICE_NAME}


def _latest(points: list[MetricPoint], name: str, span_name: str) -> MetricPoint | None:
    """Newest point of a span-metrics series (cumulative: re-sent every flush)."""
    matching = [
        p
        for p in points
        if p.name == name
        and p.attributes.get("span.name") == span_name
        and p.attributes.get("service.name") == SERVICE_NAME
    ]
    return matching[-1] if matching else None


def test_spans_round_trip_with_span_metrics(collector: RunningCollector) -> None:
    trace_id, server_id, db_id = _send_request_trace(collector.otlp_grpc_endpoint)

    spans = _ours(collector.wait_for_spans(lambda s: len(_ours(s)) >= 2))
    server, db = spans[SERVER_SPAN], spans[DB_SPAN]

    assert (server.trace_id, server.span_id, server.parent_span_id) == (trace_id, server_id, "")
    assert (db.trace_id, db.span_id, db.parent_span_id) == (trace_id, db_id, server_id)
    assert server.kind == SPAN_KIND_SERVER
    assert db.kind == SPAN_KIND_CLIENT
    assert server.attributes["http.route"] == ROUTE
    assert server.attributes["http.response.status_code"] == 200
    assert db.attributes["db.system.name"] == "cassandra"
    assert db.attributes["db.operation.name"] == "SELECT"
    assert db.attributes["db.collection.name"] == "users"
    assert server.start_unix_nano <= db.start_unix_nano <= db.end_unix_nano <= server.end_unix_nano

    # The connector flushes on an interval (1s here), after the batch
    # processor's own delay. A new calls series is first exported as 0 and
    # only counts the span on the next flush (so Prometheus sees the 0 -> 1
    # step as an increase), hence wait for the counts, not the series.
    def counted(points: list[MetricPoint]) -> bool:
        calls = [_latest(points, CALLS, span) for span in (SERVER_SPAN, DB_SPAN)]
        durations = [_latest(points, DURATION, span) for span in (SERVER_SPAN, DB_SPAN)]
        return all(c and c.value for c in calls) and all(d and d.count for d in durations)

    points = collector.wait_for_metrics(counted)
    server_calls = _latest(points, CALLS, SERVER_SPAN)
    db_calls = _latest(points, CALLS, DB_SPAN)
    server_duration = _latest(points, DURATION, SERVER_SPAN)
    db_duration = _latest(points, DURATION, DB_SPAN)
    assert server_calls
    assert db_calls
    assert server_duration
    assert db_duration

    assert server_calls.type == "sum"
    assert server_calls.value == 1
    assert db_calls.value == 1
    assert server_calls.attributes["span.kind"] == "SPAN_KIND_SERVER"
    assert server_calls.attributes["http.route"] == ROUTE
    assert server_calls.attributes["http.request.method"] == "GET"
    assert server_calls.attributes["http.response.status_code"] == 200
    # Dimensions a span does not have are omitted, not emitted empty, and the
    # raw path never becomes a label.
    assert "db.operation.name" not in server_calls.attributes
    assert "url.path" not in server_calls.attributes

    assert db_calls.attributes["span.kind"] == "SPAN_KIND_CLIENT"
    assert db_calls.attributes["db.system.name"] == "cassandra"
    assert db_calls.attributes["db.operation.name"] == "SELECT"
    assert db_calls.attributes["db.collection.name"] == "users"
    assert "http.route" not in db_calls.attributes
    assert "db.query.text" not in db_calls.attributes

    for duration in (server_duration, db_duration):
        assert duration.type == "histogram"
        assert duration.unit == "ms"
        assert duration.count == 1
        assert duration.sum is not None
        assert duration.sum >= 5  # the 5ms sleep inside the db span
        assert duration.explicit_bounds[:3] == (1.0, 2.0, 5.0)
    assert db_duration.attributes["db.collection.name"] == "users"


def test_traces_pipeline_forwards_to_jaeger_endpoint(tmp_path: Path) -> None:
    # The production exporter (otlp_grpc/jaeger, plaintext, endpoint from
    # JAEGER_ENDPOINT) is replaced by files in the overlay, so check it on
    # its own: a second collector stands in for Jaeger, which ingests the
    # same OTLP/gRPC.
    with run_collector(tmp_path / "jaeger") as jaeger:
        forward_to_jaeger = (
            "yaml:service::pipelines::traces::exporters: [otlp_grpc/jaeger, span_metrics]"
        )
        with run_collector(
            tmp_path / "collector",
            configs=(BASE_CONFIG, TEST_OVERLAY, forward_to_jaeger),
            extra_env={"JAEGER_ENDPOINT": f"127.0.0.1:{jaeger.grpc_port}"},
        ) as collector:
            trace_id, server_id, db_id = _send_request_trace(collector.otlp_grpc_endpoint)
            spans = _ours(jaeger.wait_for_spans(lambda s: len(_ours(s)) >= 2))
    assert spans[SERVER_SPAN].trace_id == trace_id
    assert spans[DB_SPAN].parent_span_id == server_id
    assert spans[DB_SPAN].span_id == db_id


def test_span_metrics_reach_prometheus_exporter(collector: RunningCollector) -> None:
    _send_request_trace(collector.otlp_grpc_endpoint)

    def scraped() -> list[str]:
        return [
            line
            for line in collector.scrape().splitlines()
            if line.startswith("traces_span_metrics_") and 'http_route="/users/{user_id}"' in line
        ]

    lines = collector.wait_for(scraped, 20.0, "span metrics on the prometheus endpoint")
    names = {line.split("{", 1)[0] for line in lines}
    assert "traces_span_metrics_calls_total" in names
    assert "traces_span_metrics_duration_milliseconds_bucket" in names
