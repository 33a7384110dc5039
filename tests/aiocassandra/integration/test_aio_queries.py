"""execute, paging, all(), batches and keyspaces against the real node."""

from __future__ import annotations

import uuid

import pytest
from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.query import FETCH_SIZE_UNSET, SimpleStatement
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.aiocassandra import (
    AsyncCluster,
    AsyncResultSet,
    AsyncSession,
    BudgetExceeded,
    time_budget,
)

pytestmark = pytest.mark.integration


async def test_first_page_only_until_iterated(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    rs = await aio_session.execute("SELECT c, v FROM small WHERE k = 1", fetch_size=40)
    assert isinstance(rs, AsyncResultSet)
    assert [row.c for row in rs.current_rows] == list(range(40))
    assert rs.has_more_pages
    assert rs.paging_state is not None
    first_state = rs.paging_state
    # execute made exactly one request: later pages are not fetched behind the caller's back.
    assert len(spans.get_finished_spans()) == 1
    seen = [row.c async for row in rs]
    assert seen == list(range(250))
    assert not rs.has_more_pages
    assert rs.paging_state is None
    assert first_state is not None
    assert len(spans.get_finished_spans()) == 7  # 250 rows / 40 = 7 pages


async def test_all_gathers_every_page(aio_session: AsyncSession, small_table: str) -> None:
    rs = await aio_session.execute("SELECT c, v FROM small WHERE k = %s", (1,), fetch_size=7)
    rows = await rs.all()
    assert [row.c for row in rows] == list(range(250))
    assert rows[3].v == "v3"
    assert await rs.all() == []  # everything was consumed


async def test_all_after_partial_iteration_returns_the_rest(
    aio_session: AsyncSession, small_table: str
) -> None:
    rs = await aio_session.execute("SELECT c FROM small WHERE k = 1", fetch_size=25)
    head = []
    async for row in rs:
        head.append(row.c)
        if len(head) == 30:
            break
    rest = await rs.all()
    assert head + [row.c for row in rest] == list(range(250))


async def test_resume_from_paging_state(aio_session: AsyncSession, small_table: str) -> None:
    query = "SELECT c FROM small WHERE k = 1"
    first = await aio_session.execute(query, fetch_size=100)
    second = await aio_session.execute(query, fetch_size=100, paging_state=first.paging_state)
    assert [row.c for row in second.current_rows] == list(range(100, 200))


async def test_one_first_and_empty_results(aio_session: AsyncSession, small_table: str) -> None:
    rs = await aio_session.execute("SELECT c, v FROM small WHERE k = 2")
    assert rs.one() == (0, "w0")
    assert rs.first() is rs.one()
    assert rs.column_names == ["c", "v"]
    empty = await aio_session.execute("SELECT c FROM small WHERE k = 404")
    assert empty.one() is None
    assert empty.current_rows == []
    assert await empty.all() == []
    assert [row async for row in empty] == []


async def test_rows_share_one_class_per_column_set(
    aio_session: AsyncSession, small_table: str
) -> None:
    a = await aio_session.execute("SELECT c, v FROM small WHERE k = 2")
    b = await aio_session.execute("SELECT c, v FROM small WHERE k = 1 LIMIT 3")
    assert type(a.one()) is type(b.one())


async def test_writes_and_conditional_writes(aio_session: AsyncSession) -> None:
    await aio_session.execute(
        "CREATE TABLE IF NOT EXISTS lwt (k uuid PRIMARY KEY, v int)", timeout=60
    )
    key = uuid.uuid4()
    insert = "INSERT INTO lwt (k, v) VALUES (%s, %s) IF NOT EXISTS"
    first = await aio_session.execute(insert, (key, 1))
    assert first.was_applied
    second = await aio_session.execute(insert, (key, 2))
    assert not second.was_applied
    plain = await aio_session.execute("UPDATE lwt SET v = 3 WHERE k = %s", (key,))
    assert plain.current_rows == []
    assert plain.one() is None


async def test_per_call_consistency_and_fetch_size_leave_the_statement_alone(
    aio_session: AsyncSession, small_table: str, spans: InMemorySpanExporter
) -> None:
    statement = SimpleStatement("SELECT c FROM small WHERE k = 1")
    rs = await aio_session.execute(statement, consistency=ConsistencyLevel.ONE, fetch_size=10)
    assert len(rs.current_rows) == 10
    assert statement.consistency_level is None
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["cassandra.consistency.level"] == "one"
    assert span.attributes["cassandra.page.size"] == 10
    prepared = await aio_session.prepare("SELECT c FROM small WHERE k = ?")
    rs = await aio_session.execute(prepared, (1,), fetch_size=50)
    assert len(rs.current_rows) == 50
    assert prepared.fetch_size is FETCH_SIZE_UNSET


async def test_batches(aio_session: AsyncSession, spans: InMemorySpanExporter) -> None:
    await aio_session.execute(
        "CREATE TABLE IF NOT EXISTS batched (k int, c int, PRIMARY KEY (k, c))", timeout=60
    )
    insert = await aio_session.prepare("INSERT INTO batched (k, c) VALUES (?, ?)")
    spans.clear()
    await aio_session.execute_batch([(insert, (1, c)) for c in range(20)])
    await aio_session.execute_batch(
        [
            ("INSERT INTO batched (k, c) VALUES (%s, %s)", (2, 0)),
            (SimpleStatement("DELETE FROM batched WHERE k = %s AND c = %s"), (1, 0)),
        ],
        logged=False,
    )
    rows = await (await aio_session.execute("SELECT k, c FROM batched")).all()
    assert sorted(rows) == [(1, c) for c in range(1, 20)] + [(2, 0)]
    logged, unlogged, _select = spans.get_finished_spans()
    assert logged.name == f"BATCH INSERT {aio_session.keyspace}.batched"
    assert logged.attributes is not None
    assert logged.attributes["db.operation.batch.size"] == 20
    assert logged.attributes["db.query.text"] == "INSERT INTO batched (k, c) VALUES (?, ?)"
    assert unlogged.name == "BATCH"
    with pytest.raises(ValueError, match="at least one"):
        await aio_session.execute_batch([])


async def test_driver_errors_keep_their_types_and_the_session_works(
    aio_session: AsyncSession, small_table: str
) -> None:
    with pytest.raises(InvalidRequest):
        await aio_session.execute("SELECT * FROM no_such_table")
    with pytest.raises(InvalidRequest):
        await aio_session.execute("SELECT c FROM small WHERE v = 'x'")  # needs ALLOW FILTERING
    assert (await aio_session.execute("SELECT c FROM small WHERE k = 2")).one() == (0,)


async def test_set_keyspace_and_connect_with_keyspace(
    aio_cluster: AsyncCluster, aio_keyspace: str, small_table: str
) -> None:
    session = await aio_cluster.connect()
    try:
        assert session.keyspace is None
        await session.set_keyspace(aio_keyspace)
        assert session.keyspace == aio_keyspace
        assert (await session.execute("SELECT c FROM small WHERE k = 2")).one() == (0,)
    finally:
        await session.close()


async def test_protocol_v5_negotiated(aio_cluster: AsyncCluster) -> None:
    assert aio_cluster.protocol_version == 5


async def test_queries_inside_a_time_budget_get_what_is_left_as_their_driver_timeout(
    aio_session: AsyncSession, small_table: str
) -> None:
    with time_budget(3.0):
        result = await aio_session.execute("SELECT c FROM small WHERE k = 2")
    timeout = result._response_future.timeout
    assert 2.0 < timeout <= 3.0
    # Outside any budget: the cluster's request timeout, as before.
    plain = await aio_session.execute("SELECT c FROM small WHERE k = 2")
    assert plain._response_future.timeout == aio_session.cluster.request_timeout


async def test_a_spent_time_budget_fails_before_reaching_cassandra(
    aio_session: AsyncSession, small_table: str
) -> None:
    with time_budget(-1.0), pytest.raises(BudgetExceeded):
        await aio_session.execute("SELECT c FROM small WHERE k = 2")
