"""The server-span middleware on a small Litestar app: names, attributes, parents, errors, logs.

No Cassandra here: the app's handlers stand in for the service's, and a "query" is a CLIENT span
started inside a handler, the way the Cassandra layer starts its own.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody
from litestar.response import Stream
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cqlstar.telemetry.http import ServerSpanMiddleware, record_exception_type
from cqlstar.telemetry.logs import JsonLogFormatter
from cqlstar.telemetry.metrics import ServiceMetrics

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class Item(msgspec.Struct):
    name: str
    size: int


class ItemBroken(Exception):
    pass


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def app(provider: TracerProvider) -> Litestar:
    query_tracer = provider.get_tracer("test.queries")

    @get("/items/{item_id:int}", sync_to_thread=False)
    def read_item(item_id: FromPath[int]) -> dict[str, int]:
        with query_tracer.start_as_current_span("SELECT shop.items", kind=SpanKind.CLIENT):
            pass
        return {"id": item_id}

    @post("/items", sync_to_thread=False)
    def create_item(data: JSONBody[Item]) -> Item:
        return data

    @get("/broken", sync_to_thread=False)
    def broken() -> None:
        raise ItemBroken

    @get("/chunks", sync_to_thread=False)
    def chunks() -> Stream:
        return Stream(iter([b"a", b"b", b"c"]))

    app = Litestar(
        route_handlers=[read_item, create_item, broken, chunks],
        after_exception=[record_exception_type],
        logging_config=None,
    )
    app.asgi_handler = ServerSpanMiddleware(
        app.asgi_handler, provider.get_tracer("cqlstar.http"), ServiceMetrics()
    )
    return app


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, base_url="http://shop.test:8080") as client:
        yield client


def only_server_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in exporter.get_finished_spans()]
    return servers[0]


async def test_span_is_named_by_route_template_with_semconv_attributes(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/items/42", headers={"user-agent": "probe/1.0"})
    assert response.status_code == 200
    span = only_server_span(exporter)
    assert span.name == "GET /items/{item_id}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/items/42",
        "url.scheme": "http",
        "server.address": "shop.test",
        "server.port": 8080,
        "user_agent.original": "probe/1.0",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_query_span_is_a_child_of_the_request_span(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    await client.get("/items/7")
    server = only_server_span(exporter)
    (query,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert query.parent is not None
    assert query.parent.span_id == server.context.span_id
    assert query.context.trace_id == server.context.trace_id


async def test_incoming_traceparent_continues_the_callers_trace(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    await client.get(
        "/items/1",
        headers={
            "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
            "tracestate": "vendor=abc",
        },
    )
    span = only_server_span(exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.context.trace_state.get("vendor") == "abc"


async def test_unknown_route_is_named_by_method_alone(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/nowhere/at/all")
    assert response.status_code == 404
    span = only_server_span(exporter)
    assert span.name == "GET"
    attributes = span.attributes or {}
    assert "http.route" not in attributes
    assert attributes["http.response.status_code"] == 404
    assert attributes["url.path"] == "/nowhere/at/all"
    assert "error.type" not in attributes  # a 4xx is the client's error, not the server's
    assert span.status.status_code is StatusCode.UNSET


async def test_wrong_method_gets_a_span_too(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    response = await client.delete("/items/3")
    assert response.status_code == 405
    span = only_server_span(exporter)
    assert span.name == "DELETE"
    assert (span.attributes or {})["http.response.status_code"] == 405


async def test_invalid_body_keeps_the_route_name(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    response = await client.post("/items", json={"name": "x", "size": "not a number"})
    assert response.status_code == 400  # Litestar's default here; the service maps it to 422
    span = only_server_span(exporter)
    assert span.name == "POST /items"
    assert (span.attributes or {})["http.route"] == "/items"


async def test_server_error_records_the_exception_type(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/broken")
    assert response.status_code == 500
    span = only_server_span(exporter)
    attributes = span.attributes or {}
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"] == f"{__name__}.ItemBroken"
    assert span.status.status_code is StatusCode.ERROR


async def test_streamed_body_makes_one_span_and_no_chunk_spans(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/chunks")
    assert response.content == b"abc"
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /chunks"


async def test_unknown_method_is_reported_as_other(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    await client.request("BREW", "/items/1")
    span = only_server_span(exporter)
    assert span.name == "HTTP"
    attributes = span.attributes or {}
    assert attributes["http.request.method"] == "_OTHER"
    assert attributes["http.request.method_original"] == "BREW"


async def test_access_log_line_carries_route_status_and_trace_ids(
    client: AsyncTestClient[Litestar], exporter: InMemorySpanExporter
) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLogFormatter())
    access = logging.getLogger("cqlstar.access")
    access.addHandler(handler)
    previous_level = access.level
    access.setLevel(logging.INFO)
    try:
        await client.get("/items/5")
        await client.get("/missing")
    finally:
        access.removeHandler(handler)
        access.setLevel(previous_level)
    found, missing = (json.loads(line) for line in out.getvalue().splitlines())
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
    server_spans = [s for s in spans if s.kind is SpanKind.SERVER]
    assert found["message"] == "request"
    assert found["method"] == "GET"
    assert found["route"] == "/items/{item_id}"
    assert found["status"] == 200
    assert found["duration_ms"] > 0
    assert found["trace_id"] == format(server_spans[0].context.trace_id, "032x")
    assert found["span_id"] == format(server_spans[0].context.span_id, "016x")
    assert missing["route"] is None
    assert missing["path"] == "/missing"
    assert missing["status"] == 404
    assert missing["trace_id"] == format(server_spans[1].context.trace_id, "032x")


async def test_without_tracing_requests_are_still_logged(app: Litestar) -> None:
    inner = app.asgi_handler.app  # type: ignore[attr-defined]
    from opentelemetry.trace import NoOpTracer

    metrics = ServiceMetrics()
    app.asgi_handler = ServerSpanMiddleware(inner, NoOpTracer(), metrics, tracing=False)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    access = logging.getLogger("cqlstar.access")
    access.addHandler(handler)
    previous_level = access.level
    access.setLevel(logging.INFO)
    try:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/items/9")).status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(previous_level)
    (record,) = records
    assert record.route == "/items/{item_id}"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    # No span was made, and the request still counts in /metrics.
    assert metrics.figures().total_requests == 1
    assert metrics.figures().active_connections == 0
