"""Spans against the real node: names, attributes, parents, errors, streams, prepares."""

from __future__ import annotations

import pytest
from cassandra import InvalidRequest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import ProxyTracerProvider, SpanKind, StatusCode

from cqlstar.aiocassandra import AsyncCluster, AsyncSession, StreamConfig
from cqlstar.aiocassandra.cql import summarize

pytestmark = pytest.mark.integration


def _attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


async def test_query_span_is_a_client_child_of_the_current_span(
    aio_session: AsyncSession,
    aio_tracer_provider: TracerProvider,
    small_table: str,
    spans: InMemorySpanExporter,
) -> None:
    statement = await aio_session.prepare("SELECT c, v FROM small WHERE k = ?", idempotent=True)
    spans.clear()
    tracer = aio_tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("handler") as parent:
        await aio_session.execute(statement, (2,))
    query, handler = spans.get_finished_spans()
    keyspace = aio_session.keyspace
    assert handler is not None
    assert query.name == f"SELECT {keyspace}.small"
    assert query.kind is SpanKind.CLIENT
    assert query.parent is not None
    assert query.parent.span_id == parent.get_span_context().span_id
    assert query.status.status_code is StatusCode.UNSET
    attributes = _attributes(query)
    host = aio_session.cluster.metadata.all_hosts()[0]
    assert attributes == {
        "db.system.name": "cassandra",
        "db.namespace": keyspace,
        "db.collection.name": "small",
        "db.operation.name": "SELECT",
        "db.query.summary": f"SELECT {keyspace}.small",
        "db.query.text": "SELECT c, v FROM small WHERE k = ?",
        "db.response.returned_rows": 3,
        "cassandra.consistency.level": "local_one",
        "cassandra.page.size": 5000,
        "cassandra.coordinator.id": str(host.host_id),
        "cassandra.coordinator.dc": host.datacenter,
        "cassandra.query.idempotent": True,
        "server.address": host.endpoint.address,
        "server.port": host.endpoint.port,
    }


async def test_bound_values_never_reach_the_span(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    await aio_session.execute("SELECT v FROM small WHERE k = %s AND c = %s", (1, 123456))
    (span,) = spans.get_finished_spans()
    text = _attributes(span)["db.query.text"]
    assert text == "SELECT v FROM small WHERE k = %s AND c = %s"
    assert "123456" not in str(_attributes(span))


async def test_failed_query_span(aio_session: AsyncSession, spans: InMemorySpanExporter) -> None:
    with pytest.raises(InvalidRequest):
        await aio_session.execute("SELECT * FROM other_ks.nothing_here")
    (span,) = spans.get_finished_spans()
    assert span.name == "SELECT other_ks.nothing_here"
    assert span.status.status_code is StatusCode.ERROR
    attributes = _attributes(span)
    assert attributes["error.type"] == "InvalidRequest"
    assert attributes["db.namespace"] == "other_ks"
    assert "server.address" in attributes


async def test_prepare_and_write_spans(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    insert = await aio_session.prepare(
        "INSERT INTO small (k, c, v) VALUES (?, ?, ?)", idempotent=True
    )
    await aio_session.execute(insert, (3, 0, "x"))
    await aio_session.execute("DELETE FROM small WHERE k = 3")
    prepare, write, delete = spans.get_finished_spans()
    keyspace = aio_session.keyspace
    assert prepare.name == f"PREPARE {keyspace}.small"
    assert _attributes(prepare)["db.operation.name"] == "PREPARE"
    assert write.name == f"INSERT {keyspace}.small"
    assert "db.response.returned_rows" not in _attributes(write)
    assert _attributes(write)["cassandra.query.idempotent"] is True
    assert delete.name == f"DELETE {keyspace}.small"
    assert _attributes(delete)["cassandra.query.idempotent"] is False


async def test_later_pages_get_their_own_spans(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    rs = await aio_session.execute("SELECT c FROM small WHERE k = 1", fetch_size=100)
    await rs.all()
    first, second, third = spans.get_finished_spans()
    assert "cassandra.page.number" not in _attributes(first)
    assert _attributes(second)["cassandra.page.number"] == 2
    assert _attributes(third)["cassandra.page.number"] == 3
    assert [_attributes(s)["db.response.returned_rows"] for s in (first, second, third)] == [
        100,
        100,
        50,
    ]


async def test_a_stream_is_one_span_with_page_events(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    async with await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=100)
    ) as stream:
        assert len([row async for row in stream]) == 250
    (span,) = spans.get_finished_spans()
    assert span.name == f"SELECT {aio_session.keyspace}.small"
    assert _attributes(span)["db.response.returned_rows"] == 250
    assert [dict(event.attributes or {}) for event in span.events] == [
        {"cassandra.page.number": 1, "rows": 100},
        {"cassandra.page.number": 2, "rows": 100},
        {"cassandra.page.number": 3, "rows": 50},
    ]


async def test_without_a_provider_the_global_one_is_used(
    aio_target: tuple[list[str], int], aio_keyspace: str, small_table: str
) -> None:
    hosts, port = aio_target
    async with AsyncCluster(hosts, port=port) as cluster:
        session = await cluster.connect(aio_keyspace)
        if isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
            # No application provider in this process: the API's no-op path, no span work.
            assert session._telemetry.start(summarize("SELECT c FROM small"), None, None) is None
        assert (await session.execute("SELECT c FROM small WHERE k = 2")).one() == (0,)


async def test_the_query_listener_hears_every_query_whether_or_not_it_is_traced(
    aio_target: tuple[list[str], int], small_table: str, aio_keyspace: str
) -> None:
    heard: list[tuple[str, str, int, bool]] = []
    hosts, port = aio_target
    # A provider that samples nothing: no span is recorded, and every query must still be heard.
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    async with AsyncCluster(
        hosts,
        port=port,
        tracer_provider=provider,
        query_listener=lambda op, table, ns, failed: heard.append((op, table, ns, failed)),
    ) as cluster:
        session = await cluster.connect(aio_keyspace)
        await session.execute("SELECT c FROM small WHERE k = 2")
        with pytest.raises(InvalidRequest):
            await session.execute("SELECT nope FROM small")
        await session.close()
    operations = [(op, table, failed) for op, table, _, failed in heard]
    assert operations == [("SELECT", "small", False), ("SELECT", "small", True)]
    assert all(duration > 0 for _, _, duration, _ in heard)
