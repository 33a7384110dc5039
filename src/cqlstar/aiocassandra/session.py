"""`AsyncSession`: queries, prepares, batches and streams over one driver `Session`.

Every request goes out with the driver's non-blocking `execute_async` (or, for PREPARE, the same
`ResponseFuture` machinery that the driver's blocking `Session.prepare` waits on) and comes back
through the `LoopBridge` of the awaiting event loop. Nothing here blocks the loop: `execute_async`
only plans, encodes and queues the request for the I/O thread (with protocol v3+ it could wait only
if a connection already had its 32k requests in flight), and the one blocking driver call,
`Session.shutdown`, runs on the cluster's one-thread executor.

`execute` is the hot path and is written out inline on purpose (no helper coroutine, no closure);
`execute_stream` and `execute_batch` share `_first_page`.

Cancellation and timeouts: if the awaiting task is cancelled (or `asyncio.wait_for` gives up), the
request's driver callbacks are dropped, so the driver never calls back into the abandoned future;
the driver still owns the in-flight request and retires it on answer or on its own timeout.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cassandra import DriverException
from cassandra.metadata import protect_name
from cassandra.query import (
    BatchStatement,
    BatchType,
    BoundStatement,
    PreparedStatement,
    SimpleStatement,
)

from ._bridge import LoopBridge
from ._context import ResultContext
from ._driver import (
    attempted_host,
    new_prepare_request,
    pooled_hosts,
    prepared_statement_from,
    release_timer,
)
from .budget import remaining
from .cql import CqlSummary, summarize
from .result import AsyncResultSet
from .streaming import AsyncStreamingResultSet, StreamConfig

if TYPE_CHECKING:
    from .cluster import AsyncCluster
    from .telemetry import QueryTrace

__all__ = ["AsyncSession", "SessionClosedError"]

log = logging.getLogger(__name__)

_DEFAULT_STREAM_CONFIG = StreamConfig()
_UNKNOWN = CqlSummary("CQL", None, None, "")
_BATCH = CqlSummary("BATCH", None, None, "")


class SessionClosedError(DriverException):  # type: ignore[misc]  # driver is untyped
    """The session (or its cluster) was closed; it accepts no more requests."""


class _SummarizedBatch(BatchStatement):  # type: ignore[misc]
    """A BatchStatement that remembers what its statements were, for its span."""

    summary: CqlSummary = _BATCH
    size: int = 0


def _summary_of(statement: Any) -> CqlSummary:
    kind = type(statement)
    if kind is str:
        return summarize(statement)
    if kind is BoundStatement:
        return summarize(statement.prepared_statement.query_string)
    if kind is _SummarizedBatch:
        summary: CqlSummary = statement.summary
        return summary
    if isinstance(statement, BatchStatement):
        return _BATCH
    text = getattr(statement, "query_string", None)
    return summarize(text) if isinstance(text, str) else _UNKNOWN


def _with_options(
    statement: Any, parameters: Any, consistency: int | None, fetch_size: int | None
) -> tuple[Any, Any]:
    """The statement with a per-call consistency level / fetch size, leaving the caller's intact."""
    if isinstance(statement, str):
        statement = SimpleStatement(statement)
    elif isinstance(statement, PreparedStatement):
        # Bind here (a fresh object we may change) rather than copy the shared prepared statement.
        statement = statement.bind(() if parameters is None else parameters)
        parameters = None
    else:
        statement = copy.copy(statement)
    if consistency is not None:
        statement.consistency_level = consistency
    if fetch_size is not None:
        statement.fetch_size = fetch_size
    return statement, parameters


def _rows_in(value: Any) -> int | None:
    return len(value) if isinstance(value, list) else None


class AsyncSession:
    """Asynchronous access to one driver `Session`; made by `AsyncCluster.connect`."""

    def __init__(self, cluster: AsyncCluster, session: Any) -> None:
        self._cluster = cluster
        self._session = session
        self._telemetry = cluster._telemetry
        self._bridge: LoopBridge | None = None
        self._prepared: dict[tuple[str, str | None, bool], Any] = {}
        self._preparing: dict[tuple[str, str | None, bool], asyncio.Task[Any]] = {}
        self._streams: weakref.WeakSet[AsyncStreamingResultSet] = weakref.WeakSet()
        self._closed = False
        self._closing: asyncio.Future[Any] | None = None
        # What results and streams of this session see of it.
        self._results = ResultContext(
            bridge_for=self._bridge_for,
            telemetry=self._telemetry,
            keyspace=lambda: self.keyspace,
            stream_closed=self._forget_stream,
        )

    # Plumbing ---------------------------------------------------------------------------------

    def _bridge_for(self, loop: asyncio.AbstractEventLoop) -> LoopBridge:
        bridge = self._bridge
        if bridge is None or bridge.loop is not loop:
            # A session normally lives on one loop; a new loop (a test's, say) gets a new bridge.
            bridge = self._bridge = LoopBridge(loop)
        return bridge

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("the session is closed")

    def _forget_stream(self, stream: AsyncStreamingResultSet) -> None:
        self._streams.discard(stream)

    # Properties -------------------------------------------------------------------------------

    @property
    def keyspace(self) -> str | None:
        """The session's current keyspace (set by `connect(keyspace)` or `set_keyspace`)."""
        keyspace: str | None = self._session.keyspace
        return keyspace

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def cluster(self) -> AsyncCluster:
        return self._cluster

    @property
    def driver_session(self) -> Any:
        """The underlying driver `Session` (for what this layer does not wrap)."""
        return self._session

    # Queries ----------------------------------------------------------------------------------

    async def execute(
        self,
        statement: Any,
        parameters: Sequence[Any] | dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        consistency: int | None = None,
        fetch_size: int | None = None,
        paging_state: bytes | None = None,
    ) -> AsyncResultSet:
        """Run one statement; return once its first page is in.

        `statement`: CQL text (with %s / %(name)s placeholders), a SimpleStatement, a
        PreparedStatement (bound here with `parameters`), a BoundStatement or a BatchStatement.
        `timeout`: seconds for this request (None: the cluster's request timeout); per page for
        pages fetched later by iterating the result. `consistency` and `fetch_size` override the
        statement's for this call only. `paging_state`: resume after a previous page.
        """
        if self._closed:
            raise SessionClosedError("the session is closed")
        loop = asyncio.get_running_loop()
        bridge = self._bridge
        if bridge is None or bridge.loop is not loop:
            bridge = self._bridge_for(loop)
        if consistency is not None or fetch_size is not None:
            statement, parameters = _with_options(statement, parameters, consistency, fetch_size)
        summary = _summary_of(statement)
        timeout = remaining(self._cluster.request_timeout if timeout is None else timeout)
        query = self._telemetry.start(summary, self._session.keyspace, statement)
        try:
            response_future = self._session.execute_async(
                statement, parameters, timeout=timeout, paging_state=paging_state
            )
        except BaseException as exc:  # e.g. wrong number of bind values
            if query is not None:
                self._telemetry.fail(query, None, exc)
            raise
        # The future first, then the callbacks: an answer already in is delivered at registration.
        fut = loop.create_future()
        response_future.add_callback(bridge.deliver_result, fut)
        response_future.add_errback(bridge.deliver_error, fut)
        try:
            rows = await fut
        except BaseException as exc:
            response_future.clear_callbacks()
            if query is not None:
                self._telemetry.fail(query, response_future, exc)
            raise
        release_timer(response_future)
        if query is not None:
            self._telemetry.succeed(query, response_future, _rows_in(rows))
        return AsyncResultSet(self._results, response_future, rows, summary, timeout)

    async def execute_batch(
        self,
        statements: Iterable[tuple[Any, Sequence[Any] | dict[str, Any] | None]],
        *,
        logged: bool = True,
        timeout: float | None = None,
    ) -> AsyncResultSet:
        """Run (statement, parameters) pairs as one LOGGED (default) or UNLOGGED batch.

        The batch is idempotent (and so retryable on write timeouts) only if every statement in it
        is marked idempotent.
        """
        self._check_open()
        batch = _SummarizedBatch(
            batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED, session=self._session
        )
        summaries: list[CqlSummary] = []
        idempotent = True
        for statement, parameters in statements:
            batch.add(statement, parameters)
            summaries.append(_summary_of(statement))
            idempotent = idempotent and bool(getattr(statement, "is_idempotent", False))
        if not summaries:
            raise ValueError("execute_batch needs at least one statement")
        batch.is_idempotent = idempotent
        batch.summary = _batch_summary(summaries)
        batch.size = len(summaries)
        response_future, rows, _ = await self._first_page(
            batch, None, timeout=timeout, paging_state=None, keep_span=False, summary=batch.summary
        )
        return AsyncResultSet(self._results, response_future, rows, batch.summary, timeout)

    async def execute_stream(
        self,
        statement: Any,
        parameters: Sequence[Any] | dict[str, Any] | None = None,
        *,
        config: StreamConfig | None = None,
        timeout: float | None = None,
        consistency: int | None = None,
        paging_state: bytes | None = None,
    ) -> AsyncStreamingResultSet:
        """Start streaming a query's rows page by page (see `streaming` for the flow control).

        `timeout` (else `config.timeout`, else the cluster's request timeout) applies to each page
        fetch separately. Use the result as `async with stream:` so it is closed on early exit.
        """
        self._check_open()
        config = config or _DEFAULT_STREAM_CONFIG
        page_timeout = timeout if timeout is not None else config.timeout
        statement, parameters = _with_options(statement, parameters, consistency, config.fetch_size)
        summary = _summary_of(statement)
        response_future, rows, query = await self._first_page(
            statement,
            parameters,
            timeout=page_timeout,
            paging_state=paging_state,
            keep_span=True,
            summary=summary,
        )
        try:
            stream = AsyncStreamingResultSet(
                self._results,
                response_future,
                rows,
                config=config,
                page_timeout=page_timeout,
                bridge=self._bridge_for(asyncio.get_running_loop()),
                query=query,
            )
        except BaseException:
            response_future.clear_callbacks()
            raise
        if not stream.is_closed:
            self._streams.add(stream)
        return stream

    async def _first_page(
        self,
        statement: Any,
        parameters: Any,
        *,
        timeout: float | None,
        paging_state: bytes | None,
        keep_span: bool,
        summary: CqlSummary,
    ) -> tuple[Any, Any, QueryTrace | None]:
        """Send a request and await its first answer; the non-hot-path twin of `execute`."""
        timeout = remaining(self._cluster.request_timeout if timeout is None else timeout)
        loop = asyncio.get_running_loop()
        bridge = self._bridge_for(loop)
        batch_size = statement.size if type(statement) is _SummarizedBatch else None
        query = self._telemetry.start(
            summary, self._session.keyspace, statement, batch_size=batch_size
        )
        response_future = None
        try:
            response_future = self._session.execute_async(
                statement, parameters, timeout=timeout, paging_state=paging_state
            )
            fut = loop.create_future()
            bridge.watch(response_future, fut)
            rows = await fut
        except BaseException as exc:
            if response_future is not None:
                response_future.clear_callbacks()
            if query is not None:
                self._telemetry.fail(query, response_future, exc)
            raise
        release_timer(response_future)
        if query is not None and not keep_span:
            self._telemetry.succeed(query, response_future, _rows_in(rows))
        return response_future, rows, query

    # Prepared statements ----------------------------------------------------------------------

    async def prepare(self, cql: str, *, idempotent: bool = False) -> Any:
        """Prepare `cql` once per (cql, session keyspace, idempotent) and cache it.

        Concurrent first calls share one PREPARE request. `idempotent=True` marks the statement (and
        every statement bound from it) idempotent, which lets the retry policy retry its writes.
        A failed prepare is not cached.
        """
        key = (cql, self._session.keyspace, idempotent)
        prepared = self._prepared.get(key)
        if prepared is not None:
            return prepared
        self._check_open()
        task = self._preparing.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._prepare_once(key), name=f"aiocassandra-prepare:{cql[:40]}"
            )
            self._preparing[key] = task
        # Shielded: one caller giving up (cancelled) must not abort the prepare the others await.
        return await asyncio.shield(task)

    async def _prepare_once(self, key: tuple[str, str | None, bool]) -> Any:
        cql, _keyspace, idempotent = key
        try:
            prepared = await self._send_prepare(cql)
            prepared.is_idempotent = idempotent
            self._prepared[key] = prepared
            return prepared
        finally:
            self._preparing.pop(key, None)

    async def _send_prepare(self, cql: str) -> Any:
        """PREPARE without blocking: what the driver's `Session.prepare` does, minus its wait."""
        loop = asyncio.get_running_loop()
        bridge = self._bridge_for(loop)
        cluster = self._session.cluster
        summary = summarize(cql)
        target = summary.target(self._session.keyspace)
        query = self._telemetry.start(
            summary,
            self._session.keyspace,
            None,
            operation="PREPARE",
            name=f"PREPARE {target}" if target else "PREPARE",
        )
        response_future = new_prepare_request(self._session, cql, self._cluster.request_timeout)
        fut = loop.create_future()
        try:
            response_future.send_request()
            bridge.watch(response_future, fut)
            response = await fut
            prepared = prepared_statement_from(response, cql, cluster)
        except BaseException as exc:
            response_future.clear_callbacks()
            if query is not None:
                self._telemetry.fail(query, response_future, exc)
            raise
        prepared.custom_payload = response_future.custom_payload
        # Registered with the cluster so the driver can re-prepare it on a node that forgot it.
        cluster.add_prepared(response.query_id, prepared)
        if query is not None:
            self._telemetry.succeed(query, response_future, None)
        if cluster.prepare_on_all_hosts:
            await self._prepare_on_other_hosts(cql, attempted_host(response_future))
        return prepared

    async def _prepare_on_other_hosts(self, cql: str, done_on: Any) -> None:
        """Warm the other nodes' caches, as the driver does; failures only cost a re-prepare."""
        loop = asyncio.get_running_loop()
        bridge = self._bridge_for(loop)
        waits: list[asyncio.Future[Any]] = []
        for host in pooled_hosts(self._session):
            if host == done_on or not host.is_up:
                continue
            response_future = new_prepare_request(
                self._session, cql, self._cluster.request_timeout, host=host
            )
            fut = loop.create_future()
            response_future.send_request()
            bridge.watch(response_future, fut)
            waits.append(fut)
        if waits:
            for outcome in await asyncio.gather(*waits, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    log.debug("preparing on another node failed: %r", outcome)

    # Keyspace and lifecycle -------------------------------------------------------------------

    async def set_keyspace(self, keyspace: str) -> None:
        """Switch the session (all its connections) to `keyspace`."""
        await self.execute(f"USE {protect_name(keyspace)}")

    async def close(self) -> None:
        """Close the session: open streams are cancelled, connections closed. Idempotent."""
        if self._closing is None:
            self._mark_closed()
            if self._cluster.is_closed:  # the cluster's shutdown closed the driver session
                self._closing = asyncio.get_running_loop().create_future()
                self._closing.set_result(None)
            else:
                self._closing = self._cluster._run_blocking(self._session.shutdown)
        await asyncio.shield(self._closing)

    def _mark_closed(self) -> None:
        """Refuse new requests and stop the streams; the connections are closed by the caller."""
        self._closed = True
        for stream in list(self._streams):
            stream.cancel()
        self._streams.clear()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AsyncSession {state} keyspace={self.keyspace!r}>"


def _batch_summary(summaries: list[CqlSummary]) -> CqlSummary:
    """One summary for a batch: `BATCH INSERT ks.t` when all statements agree, else `BATCH`."""
    first = summaries[0]
    same_target = all(
        s.operation == first.operation and s.keyspace == first.keyspace and s.table == first.table
        for s in summaries
    )
    texts = list(dict.fromkeys(s.text for s in summaries if s.text))
    text = "; ".join(texts)
    if same_target and first.table is not None:
        return CqlSummary(f"BATCH {first.operation}", first.keyspace, first.table, text)
    keyspaces = {s.keyspace for s in summaries}
    keyspace = keyspaces.pop() if len(keyspaces) == 1 else None
    return CqlSummary("BATCH", keyspace, None, text)
