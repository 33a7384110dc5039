"""Speculative attempts and retries happen for real on the cluster, and the spans say so.

In-process, through the async layer with an in-memory span exporter (the served app's spans do not
leave its process here). Each case picks partition keys whose first replica in the driver's query
plan is node 3 (token-aware, replicas in ring order), so every read starts there:

* node 3 frozen, speculative reads on: each read's span shows attempt 1 on node 3 and a speculative
  attempt on another node, which answered;
* node 3 frozen with reads in flight, speculative reads off, then killed: the dead connection fails
  the reads in flight, the retry policy sends each to the next host, and each span shows attempt 1 on
  node 3 and a retry elsewhere.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar import localcluster
from cqlstar.aiocassandra import AsyncCluster, AsyncSession

pytestmark = pytest.mark.integration

SLOW_NODE = 3
SLOW_ADDRESS = localcluster.ADDRESSES[SLOW_NODE - 1]
READ = "SELECT v FROM kv WHERE k = ?"


@pytest.fixture
async def keyspace(whole_cluster: None) -> AsyncIterator[str]:
    name = f"cqlstar_spans_{uuid.uuid4().hex[:10]}"
    async with AsyncCluster(localcluster.ADDRESSES) as cluster:
        session = await cluster.connect()
        await session.execute(
            f"CREATE KEYSPACE {name} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{localcluster.DATACENTER}': 3}}",
            timeout=60,
        )
        await session.execute(f"CREATE TABLE {name}.kv (k int PRIMARY KEY, v text)", timeout=60)
        insert = await session.prepare(f"INSERT INTO {name}.kv (k, v) VALUES (?, ?)")
        await asyncio.gather(
            *(
                session.execute(insert, (k, f"v{k}"), consistency=ConsistencyLevel.ALL)
                for k in range(90)
            )
        )
    yield name
    # The retry case leaves node 3 dead: the two others drop the keyspace (the next test that
    # needs the whole cluster restarts it).
    async with AsyncCluster(localcluster.ADDRESSES) as cluster:
        await (await cluster.connect()).execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


def _traced_cluster(exporter: InMemorySpanExporter, **options: Any) -> AsyncCluster:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return AsyncCluster(
        localcluster.ADDRESSES,
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        tracer_provider=provider,
        **options,
    )


async def _keys_starting_on_slow_node(session: AsyncSession, prepared: Any) -> list[int]:
    metadata = session.cluster.metadata
    for _ in range(60):  # the driver must see every node up, or its plans skip one
        if all(host.is_up for host in metadata.all_hosts()):
            break
        await asyncio.sleep(0.5)
    keys = []
    for k in range(90):
        routing_key = prepared.bind((k,)).routing_key
        replicas = metadata.get_replicas(session.keyspace, routing_key)
        if replicas and replicas[0].address == SLOW_ADDRESS:
            keys.append(k)
    assert len(keys) >= 10, "a third of the keys start on each node"
    return keys[:20]


def _attempts(span: Any) -> list[tuple[str, str]]:
    return [
        (e.attributes["cassandra.attempt.kind"], e.attributes["server.address"])
        for e in span.events
        if e.name == "cassandra.attempt"
    ]


def _read_spans(exporter: InMemorySpanExporter, keyspace: str) -> list[Any]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == f"SELECT {keyspace}.kv" and s.attributes.get("db.operation.name") == "SELECT"
    ]


async def test_a_frozen_coordinator_shows_as_a_speculative_attempt(keyspace: str) -> None:
    exporter = InMemorySpanExporter()
    async with _traced_cluster(exporter, speculative_delay=0.05) as cluster:
        session = await cluster.connect(keyspace)
        prepared = await session.prepare(READ, idempotent=True)
        keys = await _keys_starting_on_slow_node(session, prepared)
        # Once on every key first: a node that restarted lately re-prepares on first use.
        await asyncio.gather(*(session.execute(prepared, (k,)) for k in keys))
        exporter.clear()
        localcluster.freeze(SLOW_NODE)
        try:
            rows = await asyncio.gather(*(session.execute(prepared, (k,), timeout=8) for k in keys))
        finally:
            localcluster.thaw(SLOW_NODE)
    assert [r.one().v for r in rows] == [f"v{k}" for k in keys]
    spans = _read_spans(exporter, keyspace)
    assert len(spans) == len(keys)
    for span in spans:
        attempts = _attempts(span)
        assert attempts[0] == ("initial", SLOW_ADDRESS), attempts
        assert len(attempts) >= 2, attempts
        # Speculative attempts, sometimes with a retry beside them: a coordinator that asked the
        # frozen replica for the data gets a read timeout, which the retry policy retries there.
        assert {kind for kind, _ in attempts[1:]} <= {"speculative", "mixed"}, attempts
        assert any(address != SLOW_ADDRESS for _, address in attempts[1:]), attempts
        assert span.attributes["cassandra.speculative_executions"] >= 1
        # The answer came from another node.
        assert span.attributes["server.address"] != SLOW_ADDRESS
        assert span.status.is_ok


async def test_a_coordinator_lost_mid_request_shows_as_a_retry(keyspace: str) -> None:
    exporter = InMemorySpanExporter()
    async with _traced_cluster(exporter) as cluster:  # speculative execution off
        session = await cluster.connect(keyspace)
        prepared = await session.prepare(READ, idempotent=True)
        keys = await _keys_starting_on_slow_node(session, prepared)
        # Once on every key first: a node that restarted lately re-prepares on first use.
        await asyncio.gather(*(session.execute(prepared, (k,)) for k in keys))
        exporter.clear()
        localcluster.freeze(SLOW_NODE)
        reads = [asyncio.ensure_future(session.execute(prepared, (k,), timeout=15)) for k in keys]
        await asyncio.sleep(1.0)  # every read is now waiting on the frozen node
        assert not any(r.done() for r in reads)
        await asyncio.to_thread(localcluster.kill, SLOW_NODE)
        rows = await asyncio.gather(*reads)
    assert [r.one().v for r in rows] == [f"v{k}" for k in keys]
    spans = _read_spans(exporter, keyspace)
    assert len(spans) == len(keys)
    for span in spans:
        attempts = _attempts(span)
        assert attempts[0] == ("initial", SLOW_ADDRESS), attempts
        assert attempts[1][0] == "retry", attempts
        assert attempts[1][1] != SLOW_ADDRESS, attempts
        assert span.attributes["cassandra.retries"] >= 1
        assert span.attributes["cassandra.speculative_executions"] == 0
        assert span.status.is_ok
