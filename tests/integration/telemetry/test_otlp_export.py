"""Export to a real OpenTelemetry Collector (the project's ocb build, `otel/collector.yaml` plus the
file-exporter test overlay), from the service as deployed: granian, configured only by `OTEL_*`.

The batch processor's schedule delay is set to ten minutes, so the spans can only reach the
collector through the flush the service does when it shuts down.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from cqlstar import __version__
from otelcol import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    ExportedSpan,
    MetricPoint,
    RunningCollector,
    run_collector,
)
from served import serve_app, stop_app

pytestmark = pytest.mark.integration

READ_SPAN = "GET /users/{user_id}"
CALLS = "traces.span.metrics.calls"


def drive_traffic(base_url: str, trace_id: str) -> str:
    """Create a user and read it back, both inside the caller's trace; return the user id."""
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    body = {"name": "Exported", "email": f"export-{trace_id}@example.com", "age": 33}
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
        created = client.post("/users", json=body)
        assert created.status_code == 201
        user_id: str = created.json()["id"]
        assert client.get(f"/users/{user_id}").status_code == 200
    return user_id


def serve_and_stop(
    app_env: dict[str, str], collector: RunningCollector, protocol: str, workdir: Path
) -> tuple[str, str]:
    service_name = f"cqlstar-export-{secrets.token_hex(4)}"
    env = {
        **app_env,
        **collector.otel_env(protocol),
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    served = serve_app(env, workdir / f"server-{protocol.replace('/', '-')}.log")
    trace_id = secrets.token_hex(16)
    try:
        drive_traffic(served.base_url, trace_id)
        # Still queued in the service: nothing of this trace has been exported yet.
        assert not [s for s in collector.spans() if s.trace_id == trace_id]
    finally:
        stop_app(served)
    assert served.process.returncode == 0, served.log_text()[-3000:]
    return trace_id, service_name


def spans_of(trace_id: str, spans: list[ExportedSpan]) -> list[ExportedSpan]:
    return [s for s in spans if s.trace_id == trace_id]


def latest_calls(points: list[MetricPoint], service: str, span_name: str) -> MetricPoint | None:
    series = [
        p
        for p in points
        if p.name == CALLS
        and p.attributes.get("span.name") == span_name
        and p.attributes.get("service.name") == service
    ]
    return series[-1] if series else None


@pytest.fixture
def collector(tmp_path: Path) -> Any:
    with run_collector(tmp_path / "otelcol") as col:
        yield col


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_shutdown_flushes_the_request_and_its_queries_to_the_collector(
    app_env: dict[str, str], collector: RunningCollector, tmp_path: Path, protocol: str
) -> None:
    trace_id, service_name = serve_and_stop(app_env, collector, protocol, tmp_path)

    def read_with_queries(spans: list[ExportedSpan]) -> bool:
        ours = spans_of(trace_id, spans)
        reads = [s for s in ours if s.name == READ_SPAN]
        return bool(reads) and any(s.parent_span_id == reads[0].span_id for s in ours)

    ours = spans_of(trace_id, collector.wait_for_spans(read_with_queries))
    servers = [s for s in ours if s.kind == SPAN_KIND_SERVER]
    assert sorted(s.name for s in servers) == ["GET /users/{user_id}", "POST /users"]
    for server in servers:
        assert server.resource["service.name"] == service_name
        assert server.resource["service.version"] == __version__
        assert server.scope == "cqlstar.http"
        assert server.attributes["http.route"] in {"/users", "/users/{user_id}"}
        assert server.parent_span_id  # the caller's span, from traceparent
        # The request's children: its queries, and a create's broadcast publish (a PRODUCER span).
        children = [s for s in ours if s.parent_span_id == server.span_id]
        queries = [s for s in children if s.scope == "cqlstar.aiocassandra"]
        assert queries, f"no query span under {server.name}"
        assert {s.scope for s in children} <= {"cqlstar.aiocassandra", "cqlstar.realtime"}
        for query in queries:
            assert query.kind == SPAN_KIND_CLIENT
            assert query.attributes["db.system.name"] == "cassandra"
            assert server.start_unix_nano <= query.start_unix_nano
            assert query.end_unix_nano <= server.end_unix_nano
    read = next(s for s in servers if s.name == READ_SPAN)
    read_queries = [
        s for s in ours if s.parent_span_id == read.span_id and s.scope == "cqlstar.aiocassandra"
    ]
    query_name = read_queries[0].name

    # The collector's span_metrics connector turned the same spans into call counts.
    def counted(points: list[MetricPoint]) -> bool:
        server_calls = latest_calls(points, service_name, READ_SPAN)
        query_calls = latest_calls(points, service_name, query_name)
        return bool(server_calls and server_calls.value and query_calls and query_calls.value)

    points = collector.wait_for_metrics(counted)
    server_calls = latest_calls(points, service_name, READ_SPAN)
    assert server_calls is not None
    assert server_calls.value == 1
    assert server_calls.attributes["http.route"] == "/users/{user_id}"
    assert server_calls.attributes["span.kind"] == "SPAN_KIND_SERVER"
    query_calls = latest_calls(points, service_name, query_name)
    assert query_calls is not None
    assert query_calls.value is not None
    assert query_calls.value >= 1
    assert query_calls.attributes["span.kind"] == "SPAN_KIND_CLIENT"
