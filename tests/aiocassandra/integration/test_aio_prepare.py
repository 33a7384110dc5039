"""PREPARE: non-blocking, cached, shared by concurrent first callers, failures not cached."""

from __future__ import annotations

import asyncio

import pytest
from cassandra import InvalidRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.aiocassandra import AsyncSession

pytestmark = pytest.mark.integration


def _prepare_spans(spans: InMemorySpanExporter) -> list[str]:
    return [s.name for s in spans.get_finished_spans() if s.name.startswith("PREPARE")]


async def test_concurrent_first_prepares_prepare_once(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    cql = "SELECT v FROM small WHERE k = ? AND c = ?"
    results = await asyncio.gather(*(aio_session.prepare(cql) for _ in range(20)))
    assert all(result is results[0] for result in results)
    assert await aio_session.prepare(cql) is results[0]
    assert _prepare_spans(spans) == [f"PREPARE {aio_session.keyspace}.small"]
    assert (await aio_session.execute(results[0], (1, 7))).one() == ("v7",)


async def test_idempotent_flag_is_part_of_the_cache_key(
    aio_session: AsyncSession, small_table: str
) -> None:
    cql = "SELECT v FROM small WHERE k = ? AND c = ? LIMIT 1"
    plain = await aio_session.prepare(cql)
    idempotent = await aio_session.prepare(cql, idempotent=True)
    assert plain is not idempotent
    assert plain.is_idempotent is False
    assert idempotent.is_idempotent is True
    assert idempotent.bind((1, 2)).is_idempotent is True


async def test_a_cancelled_first_caller_does_not_break_the_others(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    cql = "SELECT c FROM small WHERE k = ? LIMIT 2"
    first = asyncio.create_task(aio_session.prepare(cql))
    second = asyncio.create_task(aio_session.prepare(cql))
    await asyncio.sleep(0)
    first.cancel()
    prepared = await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await aio_session.prepare(cql) is prepared
    assert len(_prepare_spans(spans)) == 1


async def test_failed_prepares_are_not_cached(
    aio_session: AsyncSession, spans: InMemorySpanExporter
) -> None:
    cql = "SELECT nope FROM missing_table WHERE k = ?"
    with pytest.raises(InvalidRequest):
        await aio_session.prepare(cql)
    with pytest.raises(InvalidRequest):
        await aio_session.prepare(cql)
    failed = [s for s in spans.get_finished_spans() if s.name.startswith("PREPARE")]
    assert len(failed) == 2
    assert all(s.attributes and s.attributes["error.type"] == "InvalidRequest" for s in failed)
