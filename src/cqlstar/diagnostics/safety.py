"""`/context_manager_safety/*`: the async layer's lifetime guarantees, checked on the live service.

Each POST route provokes one situation that could leave the shared session broken or leaking (a
failed query, a failed stream, streams running side by side, nested cluster/session/stream
lifetimes, a stream cancelled half-way) and then checks, with real queries, that the session the
service runs on still works. The GET route reports the state of that session and its cluster.

Rows come from `ScratchRun`: a partition of the diagnostics' own table, written at the start of the
call and deleted at its end, so no client ever sees them and no user row is touched.
"""

from __future__ import annotations

import asyncio

from cassandra import InvalidRequest
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK

from cqlstar.aiocassandra import AsyncCluster, AsyncSession, AsyncStreamingResultSet, StreamConfig
from cqlstar.database import CassandraConnection
from cqlstar.diagnostics.schemas import (
    AgeFilterCount,
    CancellationReport,
    ConcurrentStreamsReport,
    NestedContextsReport,
    QueryErrorReport,
    ResourceStatus,
    StreamingErrorReport,
    data_route_errors,
)
from cqlstar.diagnostics.scratch import ScratchRun
from cqlstar.identity import Role, requires
from cqlstar.settings import Settings

# Never created by anything: the query that must fail with InvalidRequest.
MISSING_TABLE = "diagnostics_table_that_does_not_exist"
_SELECT_MISSING = "SELECT * FROM diagnostics_table_that_does_not_exist"

# Small pages on purpose: every stream below spans several pages, so page fetches of different
# streams interleave and a cancel can land between them.
_FETCH_SIZE = 4

STREAMING_ERROR_ROWS = 10
CONCURRENT_STREAM_AGES = tuple(range(20, 60))  # one scratch row per age, 20..59
CONCURRENT_STREAM_FILTERS = (30, 40, 50)
NESTED_CONTEXT_ROWS = 5
CANCELLATION_ROWS = 40
CANCEL_AFTER_ROWS = 10

NESTED_EVENTS = (
    "cluster_opened",
    "session_opened",
    "stream_opened",
    "stream_closed",
    "session_closed",
    "cluster_closed",
)


def _server_message(exc: InvalidRequest) -> str:
    # The driver's server errors carry the server's own text in `.message`; str() adds a prefix.
    message = getattr(exc, "message", None)
    return str(message) if message else str(exc)


async def _count_rows(stream: AsyncStreamingResultSet) -> int:
    count = 0
    async with stream:
        async for _ in stream:
            count += 1
    return count


def _check(name: str, operation: str, *, summary: str) -> post:
    """The declaration every check shares: `POST /<name>`, 200 with its report, the data routes'
    errors, and `operation` naming it in those errors."""
    return post(
        f"/{name}",
        operation_id=f"context_manager_safety_{name}",
        summary=summary,
        status_code=HTTP_200_OK,
        opt={"operation": operation},
        responses=data_route_errors(operation),
    )


class ContextManagerSafetyController(Controller):
    path = "/context_manager_safety"
    tags = ["diagnostics"]
    opt = requires(Role.ADMIN)

    @_check(
        "query_error",
        "check query error safety",
        summary="A failed query leaves the session working",
    )
    async def query_error(
        self, connection: NamedDependency[CassandraConnection]
    ) -> QueryErrorReport:
        """Queries a table that does not exist, catches Cassandra's InvalidRequest (its message is
        `error_caught`), then runs a valid query on the same session (`cassandra_version`)."""
        session = connection.session  # the one release_version queries below
        try:
            await session.execute(_SELECT_MISSING)
        except InvalidRequest as exc:
            error_caught = _server_message(exc)
        else:
            raise LookupError(f"{MISSING_TABLE} exists; the diagnostic needs it absent")
        version = await connection.release_version()
        return QueryErrorReport(
            error_caught=error_caught,
            session_still_works=True,  # the query above answered on the same session
            session_open=not session.is_closed,
            cassandra_version=version,
        )

    @_check(
        "streaming_error",
        "check streaming error safety",
        summary="A failed stream leaves the session able to stream",
    )
    async def streaming_error(self, session: NamedDependency[AsyncSession]) -> StreamingErrorReport:
        """Streams from a table that does not exist (the error is caught), then streams this
        call's 10 scratch rows on the same session (`rows_after_error`)."""
        async with ScratchRun(session, range(STREAMING_ERROR_ROWS)) as run:
            try:
                failing = await session.execute_stream(
                    _SELECT_MISSING,
                    config=StreamConfig(fetch_size=_FETCH_SIZE),
                )
                await _count_rows(failing)
            except InvalidRequest as exc:
                error_message = _server_message(exc)
            else:
                raise LookupError(f"{MISSING_TABLE} exists; the diagnostic needs it absent")
            rows_after_error = await _count_rows(await run.stream(fetch_size=_FETCH_SIZE))
        return StreamingErrorReport(
            streaming_error_caught=True,
            error_message=error_message,
            session_still_streams=rows_after_error == STREAMING_ERROR_ROWS,
            rows_after_error=rows_after_error,
            session_open=not session.is_closed,
        )

    @_check(
        "concurrent_streams",
        "check concurrent streams",
        summary="Three streams at once on one session do not interfere",
    )
    async def concurrent_streams(
        self, session: NamedDependency[AsyncSession]
    ) -> ConcurrentStreamsReport:
        """Writes 40 scratch rows (ages 20..59) and reads them with three concurrent streams
        filtered on age >= 30, 40 and 50. The streams are independent when each returns exactly
        the rows its own filter selects (30, 20 and 10), and only those."""
        async with ScratchRun(session, CONCURRENT_STREAM_AGES) as run:

            async def stream_from_age(min_age: int) -> tuple[int, bool]:
                stream = await run.stream(fetch_size=_FETCH_SIZE, min_age=min_age)
                count, only_matching = 0, True
                async with stream:
                    async for age, _seq in stream:
                        count += 1
                        only_matching = only_matching and age >= min_age
                return count, only_matching

            outcomes = await asyncio.gather(
                *(stream_from_age(min_age) for min_age in CONCURRENT_STREAM_FILTERS)
            )
            independent = all(
                only_matching and count == run.count_from_age(min_age)
                for min_age, (count, only_matching) in zip(
                    CONCURRENT_STREAM_FILTERS, outcomes, strict=True
                )
            )
        return ConcurrentStreamsReport(
            streams_completed=len(outcomes),
            all_streams_independent=independent,
            results=[
                AgeFilterCount(age=min_age, count=count)
                for min_age, (count, _) in zip(CONCURRENT_STREAM_FILTERS, outcomes, strict=True)
            ],
            session_still_open=not session.is_closed,
        )

    @_check(
        "nested_contexts",
        "check nested contexts",
        summary="A cluster, session and stream of its own close innermost first",
    )
    async def nested_contexts(
        self, session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> NestedContextsReport:
        """Opens its own cluster on the configured contact points, a session on it, and a stream
        over this call's 5 scratch rows, each in its own `async with`. An event is recorded only
        when the object's state confirms it (the stream closed while its session was still open,
        the session closed while its cluster was still open, then the cluster closed).
        `main_session_unaffected`: the service's own session still reads the same rows after."""
        events: list[str] = []
        async with ScratchRun(session, range(NESTED_CONTEXT_ROWS)) as run:
            row_count = await _nested_cluster_session_stream(run, settings, events)
            main_rows = await _count_rows(await run.stream(fetch_size=_FETCH_SIZE))
        return NestedContextsReport(
            events=events,
            correct_order=tuple(events) == NESTED_EVENTS,
            row_count=row_count,
            main_session_unaffected=not session.is_closed and main_rows == NESTED_CONTEXT_ROWS,
        )

    @_check(
        "cancellation",
        "check stream cancellation",
        summary="A stream cancelled half-way releases its resources and the session carries on",
    )
    async def cancellation(
        self, connection: NamedDependency[CassandraConnection]
    ) -> CancellationReport:
        """Streams 40 scratch rows in a task and cancels that task after it has processed 10.
        `was_cancelled`: the task ended cancelled and its stream reports closed. Then a query and a
        fresh stream over all 40 rows run on the same session."""
        session = connection.session  # the one release_version queries below
        async with ScratchRun(session, range(CANCELLATION_ROWS)) as run:
            stream = await run.stream(fetch_size=_FETCH_SIZE)
            processed, cancelled = await _consume_then_cancel(stream, CANCEL_AFTER_ROWS)
            await connection.release_version()
            rows_in_new_stream = await _count_rows(await run.stream(fetch_size=_FETCH_SIZE))
        return CancellationReport(
            was_cancelled=cancelled and stream.is_closed,
            rows_processed_before_cancel=processed,
            session_still_works=True,  # the query above answered on the same session
            new_stream_worked=rows_in_new_stream == CANCELLATION_ROWS,
            session_open=not session.is_closed,
        )

    @get(
        "/status",
        operation_id="context_manager_safety_status",
        summary="Whether the service's session and cluster are open, and their ids",
        opt={"operation": "report session status"},
        cache=False,
    )
    async def status(self, connection: NamedDependency[CassandraConnection]) -> ResourceStatus:
        """Reports state without querying Cassandra, so it answers 200 even while the service is
        still connecting (then both flags are false). The ids are fixed for the process's life."""
        session_open = cluster_open = False
        if connection.is_connected:
            session_open = not connection.session.is_closed
            cluster_open = not connection.cluster.is_closed
        return ResourceStatus(
            session_open=session_open,
            cluster_open=cluster_open,
            keyspace=connection.settings.cassandra_keyspace,
            session_id=connection.session_id,
            cluster_id=connection.cluster_id,
        )


async def _nested_cluster_session_stream(
    run: ScratchRun, settings: Settings, events: list[str]
) -> int:
    """Cluster -> session -> stream, each closed by its own context manager; returns the rows."""
    row_count = 0
    async with AsyncCluster(
        list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        local_dc=settings.cassandra_local_dc,
        username=settings.cassandra_username,
        password=settings.cassandra_password,
    ) as cluster:
        events.append("cluster_opened")
        async with await cluster.connect(settings.cassandra_keyspace) as own_session:
            events.append("session_opened")
            stream = await run.stream(fetch_size=2, session=own_session)
            async with stream:
                events.append("stream_opened")
                async for _ in stream:
                    row_count += 1
            if stream.is_closed and not own_session.is_closed:
                events.append("stream_closed")
        if own_session.is_closed and not cluster.is_closed:
            events.append("session_closed")
    if cluster.is_closed:
        events.append("cluster_closed")
    return row_count


async def _consume_then_cancel(
    stream: AsyncStreamingResultSet, cancel_after: int
) -> tuple[int, bool]:
    """Consume `stream` in a task; cancel the task once it has processed `cancel_after` rows.

    Returns (rows processed, whether the task ended cancelled).
    """
    processed = 0
    reached = asyncio.Event()

    async def consume() -> None:
        nonlocal processed
        async with stream:
            async for _ in stream:
                processed += 1
                if processed == cancel_after:
                    reached.set()
                    # Stands for slow per-row work: the cancel lands here, at a known row, rather
                    # than wherever the scheduler happens to be.
                    await asyncio.Event().wait()

    consumer = asyncio.create_task(consume(), name="diagnostics-cancellable-stream")
    waiter = asyncio.create_task(reached.wait())
    try:
        await asyncio.wait({consumer, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if consumer.done():
            # Ended before the cancel point: a failure is answered as such, never as a result.
            consumer.result()
            raise LookupError(f"the stream ended before row {cancel_after}")
        consumer.cancel()
        await asyncio.wait({consumer})
        return processed, consumer.cancelled()
    finally:
        # Also on the way out of a request that was itself cancelled; waiting for both means the
        # stream is closed before the caller deletes the rows it was reading.
        for task in (consumer, waiter):
            task.cancel()
        await asyncio.wait({consumer, waiter})
