"""Span start/end decisions that need no database."""

from __future__ import annotations

from types import SimpleNamespace

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from cqlstar.aiocassandra.cql import summarize
from cqlstar.aiocassandra.telemetry import QueryTelemetry


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _response_future(coordinator: bool = True) -> SimpleNamespace:
    host = SimpleNamespace(
        host_id="5b1f0a5e-0000-4000-8000-000000000001",
        datacenter="dc1",
        endpoint=SimpleNamespace(address="10.0.0.7", port=9042),
    )
    return SimpleNamespace(
        message=SimpleNamespace(consistency_level=ConsistencyLevel.LOCAL_QUORUM, fetch_size=500),
        coordinator_host=host if coordinator else None,
        _current_host=host,
    )


def test_no_span_work_when_not_recording() -> None:
    summary = summarize("SELECT * FROM t")
    assert QueryTelemetry(NoOpTracerProvider()).start(summary, "ks", None) is None
    assert QueryTelemetry(TracerProvider(sampler=ALWAYS_OFF)).start(summary, "ks", None) is None


def test_success_attributes() -> None:
    provider, exporter = _provider()
    telemetry = QueryTelemetry(provider)
    statement = SimpleStatement("SELECT id FROM users WHERE id = %s", is_idempotent=True)
    span = telemetry.start(summarize(statement.query_string), "cqlstar", statement)
    assert span is not None
    telemetry.succeed(span, _response_future(), 3)
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "SELECT cqlstar.users"
    assert finished.kind is SpanKind.CLIENT
    assert dict(finished.attributes or {}) == {
        "db.system.name": "cassandra",
        "db.operation.name": "SELECT",
        "db.query.summary": "SELECT cqlstar.users",
        "db.query.text": "SELECT id FROM users WHERE id = %s",
        "db.namespace": "cqlstar",
        "db.collection.name": "users",
        "cassandra.query.idempotent": True,
        "cassandra.consistency.level": "local_quorum",
        "cassandra.page.size": 500,
        "cassandra.coordinator.id": "5b1f0a5e-0000-4000-8000-000000000001",
        "cassandra.coordinator.dc": "dc1",
        "server.address": "10.0.0.7",
        "server.port": 9042,
        "db.response.returned_rows": 3,
    }


def test_failure_without_coordinator() -> None:
    provider, exporter = _provider()
    telemetry = QueryTelemetry(provider)
    span = telemetry.start(summarize("INSERT INTO t (k) VALUES (1)"), None, "INSERT ...")
    assert span is not None
    telemetry.fail(span, _response_future(coordinator=False), TimeoutError("slow"))
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "INSERT t"
    assert finished.status.status_code is StatusCode.ERROR
    attributes = dict(finished.attributes or {})
    assert attributes["error.type"] == "TimeoutError"
    assert attributes["cassandra.query.idempotent"] is False
    assert attributes["server.address"] == "10.0.0.7"
    assert "cassandra.coordinator.id" not in attributes


def test_failure_status_names_the_error_class_not_cassandras_message() -> None:
    # Cassandra's messages quote literal values and schema names; spans leave the process.
    provider, exporter = _provider()
    telemetry = QueryTelemetry(provider)
    span = telemetry.start(summarize("SELECT * FROM t WHERE k = ?"), None, "SELECT ...")
    assert span is not None
    telemetry.fail(span, None, ValueError("Invalid INTEGER constant (secret-literal-42)"))
    (finished,) = exporter.get_finished_spans()
    assert finished.status.description == "ValueError"
    assert "secret-literal-42" not in repr(finished.to_json())
