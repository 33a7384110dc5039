"""Fixtures for the async layer's tests.

Integration tests share one `AsyncCluster` (on the Cassandra that the top-level `cassandra` fixture
provides) and one keyspace of their own (`aio_test_<hex>`, dropped at the end). The cluster gets a
private TracerProvider feeding an in-memory exporter, so spans can be asserted without touching the
global provider.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.aiocassandra import AsyncCluster, AsyncSession

BIG_TABLE_ROWS = 100_000
BIG_TABLE_PARTITIONS = 100
BIG_TABLE_PAYLOAD = "x" * 40


@pytest.fixture(scope="session")
def aio_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def aio_tracer_provider(aio_exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(aio_exporter))
    return provider


@pytest.fixture
def spans(aio_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """The exporter, emptied before the test."""
    aio_exporter.clear()
    return aio_exporter


@pytest.fixture(scope="session")
def aio_target(cassandra: Any) -> tuple[list[str], int]:
    return list(cassandra.hosts), int(cassandra.port)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aio_cluster(
    aio_target: tuple[list[str], int], aio_tracer_provider: TracerProvider
) -> AsyncIterator[AsyncCluster]:
    hosts, port = aio_target
    cluster = AsyncCluster(hosts, port=port, tracer_provider=aio_tracer_provider)
    yield cluster
    await cluster.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aio_keyspace(aio_cluster: AsyncCluster) -> AsyncIterator[str]:
    name = f"aio_test_{uuid.uuid4().hex[:12]}"
    admin = await aio_cluster.connect()
    await admin.execute(
        f"CREATE KEYSPACE {name} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    yield name
    await admin.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    await admin.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aio_session(aio_cluster: AsyncCluster, aio_keyspace: str) -> AsyncIterator[AsyncSession]:
    session = await aio_cluster.connect(aio_keyspace)
    yield session
    await session.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def small_table(aio_session: AsyncSession) -> str:
    """`small`: partition k=1 holds 250 rows (c = 0..249), k=2 holds 3."""
    await aio_session.execute(
        "CREATE TABLE small (k int, c int, v text, PRIMARY KEY (k, c))", timeout=60
    )
    insert = await aio_session.prepare("INSERT INTO small (k, c, v) VALUES (?, ?, ?)")
    await asyncio.gather(*(aio_session.execute(insert, (1, c, f"v{c}")) for c in range(250)))
    await asyncio.gather(*(aio_session.execute(insert, (2, c, f"w{c}")) for c in range(3)))
    return "small"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def big_table(aio_session: AsyncSession) -> str:
    """`big`: 100k rows over 100 partitions, written as single-partition unlogged batches."""
    await aio_session.execute(
        "CREATE TABLE big (p int, c int, payload text, PRIMARY KEY (p, c))", timeout=60
    )
    insert = await aio_session.prepare("INSERT INTO big (p, c, payload) VALUES (?, ?, ?)")
    per_partition = BIG_TABLE_ROWS // BIG_TABLE_PARTITIONS
    batch_rows = 100
    limit = asyncio.Semaphore(16)

    async def write(p: int, start: int) -> None:
        async with limit:
            await aio_session.execute_batch(
                [(insert, (p, c, BIG_TABLE_PAYLOAD)) for c in range(start, start + batch_rows)],
                logged=False,
                timeout=30,
            )

    await asyncio.gather(
        *(
            write(p, start)
            for p in range(BIG_TABLE_PARTITIONS)
            for start in range(0, per_partition, batch_rows)
        )
    )
    return "big"
