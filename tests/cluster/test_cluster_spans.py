"""Speculative attempts and retries happen for real on the cluster, and the spans say so.

In-process, through the async layer with an in-memory span exporter (the served app's spans do not
leave its process here). Each case picks partition keys whose first replica in the driver's query
plan is node 3 (token-aware, replicas in ring order), so every read starts there:

* node 3 frozen, speculative reads on: each read's span shows attempt 1 on node 3 and a speculative
  attempt on another node, which answered;
* node 3 frozen with reads in flight, speculative reads off, then killed: the dead connection fails
  the reads in flight, the retry policy sends each to the next host, and each span shows attempt 1 on
  node 3, a retry count, and a later attempt elsewhere.
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
from cqlstar.aiocassandra import AsyncCluster, AsyncSession, _driver

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
    for _ in range(120):  # every node up, with a connection pool: a plan skips a node without one
        pooled = _driver.pooled_hosts(session.driver_session)
        if all(host.is_up and host in pooled for host in metadata.all_hosts()):
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
    # The reads the driver did send to the frozen node first (all of them, unless the driver had
    # just marked it down: on a busy machine a heartbeat can be late).
    started_frozen = [s for s in spans if _attempts(s)[:1] == [("initial", SLOW_ADDRESS)]]
    assert len(started_frozen) >= len(keys) // 2, [_attempts(s) for s in spans]
    for span in started_frozen:
        attempts = _attempts(span)
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
        await asyncio.sleep(1.0)  # the reads sent to the frozen node are waiting on it
        pending = {k for k, r in zip(keys, reads, strict=True) if not r.done()}
        await asyncio.to_thread(localcluster.kill, SLOW_NODE)
        rows = await asyncio.gather(*reads)
    assert [r.one().v for r in rows] == [f"v{k}" for k in keys]
    assert len(pending) >= len(keys) // 2, "most reads were waiting on the frozen node"
    spans = _read_spans(exporter, keyspace)
    assert len(spans) == len(keys)
    lost = [s for s in spans if _attempts(s)[:1] == [("initial", SLOW_ADDRESS)]]
    assert len(lost) >= len(pending)
    for span in lost:
        attempts = _attempts(span)
        assert len(attempts) >= 2, attempts
        # A retry on another node; on a busy machine sometimes beside a resend (the node asked for
        # the statement to be prepared again) or a second retry, which the kinds call `mixed`.
        assert {kind for kind, _ in attempts[1:]} <= {"retry", "mixed"}, attempts
        assert any(address != SLOW_ADDRESS for _, address in attempts[1:]), attempts
        assert span.attributes["cassandra.retries"] >= 1
        assert span.attributes["cassandra.speculative_executions"] == 0
        assert span.status.is_ok
