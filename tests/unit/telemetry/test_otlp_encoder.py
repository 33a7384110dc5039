"""SpanEncoder against the SDK's own OTLP encoder: the same bytes, the same decoded messages.

Spans come from a real SDK provider (so they carry what the service's spans carry: BoundedAttributes,
limits, dropped counts) and, for the cases a tracer cannot produce, from ReadableSpan directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from cqlstar.telemetry.otlp import (
    EncodingBatchSpanProcessor,
    GrpcSpanExporter,
    SpanEncoder,
)

REMOTE_PARENT = SpanContext(
    trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
    span_id=0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "abc"), ("other", "x-1")]),
)


def assert_same_encoding(spans: list[ReadableSpan], encoder: SpanEncoder | None = None) -> bytes:
    expected = encode_spans(spans)
    encoded = (encoder or SpanEncoder()).encode(spans)
    decoded = ExportTraceServiceRequest.FromString(encoded)
    # Field by field (the message comparison), then byte for byte.
    assert decoded == expected
    assert encoded == expected.SerializeToString()
    return encoded


@pytest.fixture
def recorded() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider(
        shutdown_on_exit=False,
        resource=Resource(
            {"service.name": "encoder-test", "service.version": "1.2.3"}, "https://s/1"
        ),
        span_limits=SpanLimits(max_span_attributes=12, max_events=3, max_links=2),
    )
    store = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(store))
    yield provider, store
    provider.shutdown()


def request_like_spans(provider: TracerProvider, count: int) -> None:
    """Server + query spans shaped like the service's, some failing, some under a remote parent."""
    http = provider.get_tracer("cqlstar.http", "0.1.0")
    db = provider.get_tracer("cqlstar.aiocassandra", schema_url="https://opentelemetry.io/s/1.30")
    for i in range(count):
        parent = set_span_in_context(NonRecordingSpan(REMOTE_PARENT)) if i % 3 == 0 else None
        server = http.start_span(
            "GET",
            parent,
            SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.path": f"/users/{i:08d}",
                "url.scheme": "http",
                "server.address": "127.0.0.1",
                "server.port": 8000,
                "user_agent.original": "wrk",
            },
        )
        query = db.start_span("SELECT ks.users", set_span_in_context(server), SpanKind.CLIENT)
        query.set_attributes(
            {
                "db.system.name": "cassandra",
                "db.query.text": "SELECT * FROM users WHERE id = ?",
                "cassandra.query.idempotent": i % 2 == 0,
                "db.response.returned_rows": i % 4,
                "cassandra.page.size": 5000,
            }
        )
        if i % 5 == 0:
            query.set_status(Status(StatusCode.ERROR, "ReadTimeout: boom ü"))
            query.set_attribute("error.type", "ReadTimeout")
        query.end()
        server.update_name("GET /users/{user_id}")
        server.set_attributes({"http.route": "/users/{user_id}", "http.response.status_code": 200})
        if i % 7 == 0:
            server.set_status(Status(StatusCode.OK))
        server.end()


def test_request_shaped_spans_encode_exactly_like_the_sdk(
    recorded: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, store = recorded
    request_like_spans(provider, 300)
    spans = list(store.get_finished_spans())
    encoder = SpanEncoder()
    assert_same_encoding(spans, encoder)
    # Again with every attribute pair now cached, and in a different order.
    assert_same_encoding(spans[::-1], encoder)
    decoded = ExportTraceServiceRequest.FromString(encoder.encode(spans))
    (resource_spans,) = decoded.resource_spans
    assert [s.scope.name for s in resource_spans.scope_spans] == [
        "cqlstar.aiocassandra",
        "cqlstar.http",
    ]
    assert resource_spans.schema_url == "https://s/1"
    query = resource_spans.scope_spans[0].spans[0]
    assert query.parent_span_id == resource_spans.scope_spans[1].spans[0].span_id
    assert query.status.code == StatusCode.ERROR.value
    assert query.status.message == "ReadTimeout: boom ü"
    server = resource_spans.scope_spans[1].spans[0]
    assert server.trace_state == "vendor=abc,other=x-1"
    assert server.flags == 0x300  # the parent is remote


def test_every_attribute_type_events_links_and_dropped_counts(
    recorded: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, store = recorded
    tracer = provider.get_tracer("edge")
    values: dict[str, Any] = {
        "s": "text",
        "empty": "",
        "unicode": "zürich ☃ \U0001f600",
        "t": True,
        "f": False,
        "zero": 0,
        "neg": -42,
        "int64.min": -(2**63),
        "int64.max": 2**63 - 1,
        "float": 1.5,
        "negative.zero": -0.0,
        "inf": math.inf,
        "bytes": b"\x00\xff",
    }
    with tracer.start_as_current_span("edge", attributes=values) as span:
        span.set_attribute("strings", ["a", "", "b"])
        span.set_attribute("ints", (1, -2, 3))
        span.set_attribute("mixed", [True, 2.5])
        span.set_attribute("empty.list", [])
        span.set_attribute("long.key" * 40, "x" * 20000)  # lengths past the small-length table
        for n in range(5):  # more than max_events=3: two dropped
            span.add_event(f"event {n}", {"n": n, "names": ["x", "y"]}, timestamp=1_000 + n)
        span.add_event("untimed")
        span.add_link(REMOTE_PARENT, {"link.kind": "follows", "weight": 0.5})
        span.add_link(SpanContext(7, 9, is_remote=False), None)
        span.add_link(SpanContext(8, 10, is_remote=False), {"third": 3})  # past max_links=2
    tracer.start_span("no attributes, root", kind=SpanKind.PRODUCER).end()
    tracer.start_span("", kind=SpanKind.CONSUMER).end()  # an empty name is not written
    spans = list(store.get_finished_spans())
    assert spans[0].dropped_attributes > 0
    assert spans[0].dropped_events == 3
    assert spans[0].dropped_links == 1
    assert_same_encoding(spans)


def test_values_the_sdk_cannot_encode_are_left_out_the_same_way() -> None:
    scope = InstrumentationScope("odd", "1")
    span = ReadableSpan(
        name="odd",
        context=SpanContext(1, 2, is_remote=False),
        resource=Resource({"service.name": "x"}),
        attributes={"too.big": 2**64, "fine": 1, "nested": {"inner": {"deep": [1, "two"]}}},
        instrumentation_scope=scope,
        start_time=10,
        end_time=20,
    )
    encoded = assert_same_encoding([span])
    (kept_span,) = (
        ExportTraceServiceRequest.FromString(encoded).resource_spans[0].scope_spans[0].spans
    )
    assert [kv.key for kv in kept_span.attributes] == ["fine", "nested"]


def test_grouping_by_resource_and_scope_follows_the_sdk() -> None:
    def span(name: str, resource: Resource, scope: InstrumentationScope | None) -> ReadableSpan:
        return ReadableSpan(
            name=name,
            context=SpanContext(3, 4, is_remote=False),
            parent=SpanContext(3, 5, is_remote=False),
            resource=resource,
            instrumentation_scope=scope,
            status=Status(StatusCode.OK),
            start_time=1,
            end_time=0,  # unset end: not written
        )

    first = Resource({"service.name": "a"})
    equal_to_first = Resource({"service.name": "a"})  # another object, equal: one group
    other = Resource({"service.name": "b", "k8s.pod.name": "p-1"}, "https://schema/2")
    scoped = InstrumentationScope("lib", "2.0", "https://lib/schema", {"scope.attr": True})
    # Scopes group by name, version, schema url and attributes: this one is apart from `scoped`.
    same_scope_other_attributes = InstrumentationScope("lib", "2.0", "https://lib/schema", {"x": 1})
    spans = [
        span("1", first, scoped),
        span("2", other, None),
        span("3", equal_to_first, same_scope_other_attributes),
        span("4", first, InstrumentationScope("lib")),
        span("5", other, scoped),
        span("6", Resource({}), None),
    ]
    encoded = assert_same_encoding(spans)
    decoded = ExportTraceServiceRequest.FromString(encoded)
    assert len(decoded.resource_spans) == 3
    assert [len(r.scope_spans) for r in decoded.resource_spans] == [3, 2, 1]
    assert [s.name for s in decoded.resource_spans[0].scope_spans[0].spans] == ["1"]
    assert [s.name for s in decoded.resource_spans[1].scope_spans[1].spans] == ["5"]


def test_the_attribute_cache_starts_over_when_full(
    recorded: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, store = recorded
    request_like_spans(provider, 50)
    spans = list(store.get_finished_spans())
    encoder = SpanEncoder(max_cached_attributes=10)
    for _ in range(3):
        assert_same_encoding(spans, encoder)
    assert encoder._cached_attributes <= 10


def test_equal_values_of_other_types_are_not_mixed_up_by_the_cache() -> None:
    # 1 == True == 1.0 and 0.0 == -0.0 in Python, with equal hashes; their encodings differ.
    values: list[Any] = [1, True, 1.0, 0, False, 0.0, -0.0, "1", 1, True, -0.0, 0.0]
    spans = [
        ReadableSpan(
            name=f"v{i}",
            context=SpanContext(1, i + 1, is_remote=False),
            resource=Resource({}),
            attributes={"value": value},
            start_time=1,
            end_time=2,
        )
        for i, value in enumerate(values)
    ]
    encoder = SpanEncoder()
    assert_same_encoding(spans, encoder)
    assert_same_encoding(spans[::-1], encoder)


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    def Export(
        self, request: ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_grpc_exporter_sends_the_encoded_request(
    recorded: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, store = recorded
    request_like_spans(provider, 20)
    spans = list(store.get_finished_spans())
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
        server.stop(None)
    assert collector.requests == [encode_spans(spans)]


@pytest.fixture
def grpc_collector() -> Iterator[tuple[_Collector, int]]:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield collector, port
    server.stop(None)


def test_encoding_processor_sends_what_the_sdk_would_have(
    grpc_collector: tuple[_Collector, int],
) -> None:
    collector, port = grpc_collector
    provider = TracerProvider(
        shutdown_on_exit=False,
        resource=Resource({"service.name": "queued"}),
        sampler=ParentBasedTraceIdRatio(0.5),
    )
    reference = InMemorySpanExporter()  # what a stock exporter would be handed
    provider.add_span_processor(SimpleSpanProcessor(reference))
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    processor = EncodingBatchSpanProcessor(exporter, max_export_batch_size=64)
    provider.add_span_processor(processor)
    assert processor.span_exporter is exporter
    request_like_spans(provider, 100)
    assert provider.force_flush(10_000)
    provider.shutdown()
    spans = list(reference.get_finished_spans())  # the sampled ones, in the order they ended
    assert 0 < len(spans) < 200  # about half the traces were sampled; the rest stay home
    received = [span for request in collector.requests for span in _all_spans(request)]
    assert len(collector.requests) == math.ceil(len(spans) / 64)
    expected = [span for batch in _batches(spans, 64) for span in _all_spans(encode_spans(batch))]
    assert received == expected


def _batches(spans: list[ReadableSpan], size: int) -> Iterator[list[ReadableSpan]]:
    for start in range(0, len(spans), size):
        yield spans[start : start + size]


def _all_spans(request: ExportTraceServiceRequest) -> list[Any]:
    return [
        (resource_spans.resource, scope_spans.scope, span)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
