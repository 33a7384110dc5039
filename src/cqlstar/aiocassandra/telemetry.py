"""OpenTelemetry spans for the layer: one CLIENT span per logical query, in current DB semconv.

Span model (also described in the package docstring):

* `execute`, `execute_batch`, `prepare`: one span per call, covering every retry and speculative
  attempt the driver makes for it, ended on the event loop when the answer arrives.
* A later page fetched by iterating an `AsyncResultSet` (or by its `all()`): one span per page
  fetch, parented to the iterating task's current span — an `AsyncResultSet` has no end of life,
  so the first span cannot wait for iteration.
* A stream (`execute_stream`): one span for the whole stream, from the first request until the
  stream is exhausted, fails or is cancelled, with one `cassandra.page` event per page handed to the
  consumer; `db.response.returned_rows` is the total.

Attempts: when the driver sent a query more than once (a retry decided by the retry policy, or a
speculative execution started because the first host was slow), the span gets one
`cassandra.attempt` event per attempt, in the order they were sent, with the host
(`server.address`, `server.port`), the attempt's number and its kind (`initial`, then `retry`,
`speculative`, or `resend`: the same node again after it asked for the statement to be prepared
again; `mixed` in the rare request that had several kinds, where the driver does not say which
attempt was which), plus the counts `cassandra.retries` and `cassandra.speculative_executions`
(from the layer's speculative plan, `speculation.CountingPlan`).
A query answered by its first attempt gets neither (its host is `server.address`). The events are
recorded when the query ends, on the loop, for `execute`, batches and prepares; page fetches after
the first share the driver's request object with it and are not broken down.

Names are `<OPERATION> <keyspace>.<table>` (`SELECT cqlstar.users`), or the operation alone when
the statement names no table; PREPARE spans are `PREPARE <keyspace>.<table>` with
`db.operation.name = PREPARE`. `db.query.text` is the statement text as written, with its
placeholders: bound values are never recorded.

Cost: the start attributes (the statement's, given to `start_span` in one dict so samplers see them)
are built once per statement and session keyspace and reused; the answer's (coordinator,
consistency, page size, rows) are set in one call when the span ends. When tracing is off the
tracer is the API's ProxyTracer (so an SDK provider installed later by the application is picked
up), `start_span` returns a non-recording span, and the only work done is the cache look-up; nothing
is computed for the answer. Spans are started and ended on the event loop thread, in the awaiting
task's context, never on the driver's I/O thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cassandra import ConsistencyLevel
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from ._driver import attempted_host, retry_count, speculative_plan
from .cql import CqlSummary

__all__ = ["QueryListener", "QueryTelemetry", "QueryTrace"]

INSTRUMENTATION_NAME = "cqlstar.aiocassandra"

DB_SYSTEM_NAME = "db.system.name"
DB_NAMESPACE = "db.namespace"
DB_COLLECTION_NAME = "db.collection.name"
DB_OPERATION_NAME = "db.operation.name"
DB_OPERATION_BATCH_SIZE = "db.operation.batch.size"
DB_QUERY_TEXT = "db.query.text"
DB_QUERY_SUMMARY = "db.query.summary"
DB_RESPONSE_RETURNED_ROWS = "db.response.returned_rows"
CASSANDRA_CONSISTENCY_LEVEL = "cassandra.consistency.level"
CASSANDRA_PAGE_SIZE = "cassandra.page.size"
CASSANDRA_COORDINATOR_ID = "cassandra.coordinator.id"
CASSANDRA_COORDINATOR_DC = "cassandra.coordinator.dc"
CASSANDRA_QUERY_IDEMPOTENT = "cassandra.query.idempotent"
CASSANDRA_PAGE_NUMBER = "cassandra.page.number"  # not semconv: which page of a paged query
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
PAGE_EVENT = "cassandra.page"
ATTEMPT_EVENT = "cassandra.attempt"
CASSANDRA_ATTEMPT_NUMBER = "cassandra.attempt.number"
CASSANDRA_ATTEMPT_KIND = "cassandra.attempt.kind"
CASSANDRA_RETRIES = "cassandra.retries"
CASSANDRA_SPECULATIVE_EXECUTIONS = "cassandra.speculative_executions"

# ConsistencyLevel.ONE -> "one", as the semconv enumerates the values.
_CONSISTENCY_NAMES: dict[int, str] = {
    value: name.lower() for value, name in ConsistencyLevel.value_to_name.items()
}


# At most this many distinct start-attribute sets are kept (statement x keyspace x idempotence x
# batch size); past that the cache starts over.
_MAX_CACHED_START_ATTRIBUTES = 1024


# Told of every query the layer finishes, whether or not it is traced: (operation, table or "",
# duration in nanoseconds, failed). It runs on the event loop, inside the query's await, so it must
# be quick.
QueryListener = Callable[[str, str, int, bool], None]


class QueryTrace:
    """One query in flight: its span when one is recorded, and when it started (for the listener)."""

    __slots__ = ("operation", "span", "started_ns", "table")

    def __init__(self, span: Span | None, operation: str, table: str) -> None:
        self.span = span
        self.operation = operation
        self.table = table
        self.started_ns = time.perf_counter_ns()


class QueryTelemetry:
    """Starts and ends the layer's spans and tells the query listener; one instance per cluster."""

    __slots__ = ("_listener", "_start_attributes", "_tracer")

    def __init__(
        self, tracer_provider: TracerProvider | None = None, listener: QueryListener | None = None
    ) -> None:
        # Without an explicit provider this is the API's ProxyTracer (unless the application set
        # its provider first), which forwards to whatever provider the application sets later.
        if tracer_provider is None:
            self._tracer = trace.get_tracer(INSTRUMENTATION_NAME)
        else:
            self._tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME)
        self._listener = listener
        # (summary id, session keyspace, idempotent, operation, name, batch size) -> (the summary,
        # pinned so its id stays its own, and the span's start attributes). A statement's
        # attributes are the same on every execution: built once, handed to every span (the SDK
        # copies them).
        self._start_attributes: dict[tuple[Any, ...], tuple[CqlSummary, dict[str, Any]]] = {}

    def start(
        self,
        summary: CqlSummary,
        session_keyspace: str | None,
        statement: Any,
        *,
        operation: str | None = None,
        name: str | None = None,
        batch_size: int | None = None,
    ) -> QueryTrace | None:
        """The query's trace in the current context: None when neither a recording span nor the
        listener wants it, so an untraced, unobserved query costs one cached look-up.

        `statement` is what the driver executes (a str, a Statement, or None for a PREPARE).
        """
        if name is None:
            name = summary.span_name(session_keyspace)
        # A PREPARE (statement None) is idempotent; a plain string never is to the driver.
        idempotent = statement is None or bool(getattr(statement, "is_idempotent", False))
        key = (id(summary), session_keyspace, idempotent, operation, name, batch_size)
        cached = self._start_attributes.get(key)
        if cached is None or cached[0] is not summary:
            attributes = _start_attributes(
                summary,
                session_keyspace,
                idempotent=idempotent,
                operation=operation,
                name=name,
                batch_size=batch_size,
            )
            if len(self._start_attributes) >= _MAX_CACHED_START_ATTRIBUTES:
                self._start_attributes.clear()
            self._start_attributes[key] = cached = (summary, attributes)
        # Given at creation, in one dict: samplers see them, and the SDK validates them in one pass.
        span: Span | None = self._tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=cached[1]
        )
        if span is not None and not span.is_recording():
            span = None
        if span is None and self._listener is None:
            return None
        attributes = cached[1]
        return QueryTrace(
            span, attributes[DB_OPERATION_NAME], attributes.get(DB_COLLECTION_NAME, "")
        )

    def start_page(
        self, summary: CqlSummary, session_keyspace: str | None, statement: Any, page_number: int
    ) -> QueryTrace | None:
        """A trace for fetching page `page_number` (2, 3, ...) of an `AsyncResultSet`."""
        query = self.start(summary, session_keyspace, statement)
        if query is not None and query.span is not None:
            query.span.set_attribute(CASSANDRA_PAGE_NUMBER, page_number)
        return query

    def _tell_listener(self, query: QueryTrace, *, failed: bool) -> None:
        if self._listener is not None:
            duration_ns = time.perf_counter_ns() - query.started_ns
            self._listener(query.operation, query.table, duration_ns, failed)

    def succeed(
        self, query: QueryTrace, response_future: Any, rows: int | None, *, attempts: bool = True
    ) -> None:
        """Record what the answer says and end the span.

        `attempts`: whether `response_future` served this span's request alone, so that its hosts
        are this span's attempts (False for later pages and streams).
        """
        self._tell_listener(query, failed=False)
        span = query.span
        if span is None:
            return
        attributes = _response_attributes(response_future)
        if rows is not None:
            attributes[DB_RESPONSE_RETURNED_ROWS] = rows
        if attempts:
            _record_attempts(span, response_future, attributes)
        span.set_attributes(attributes)
        span.end()

    def fail(
        self,
        query: QueryTrace,
        response_future: Any,
        exc: BaseException,
        *,
        attempts: bool = True,
    ) -> None:
        """Mark the span failed with the exception's class name and end it."""
        self._tell_listener(query, failed=True)
        span = query.span
        if span is None:
            return
        attributes = {} if response_future is None else _response_attributes(response_future)
        attributes[ERROR_TYPE] = type(exc).__name__
        if attempts and response_future is not None:
            _record_attempts(span, response_future, attributes)
        span.set_attributes(attributes)
        # The class name only: Cassandra's message can quote literal values and schema names, and
        # spans leave the process.
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()

    @staticmethod
    def page(query: QueryTrace, page_number: int, rows: int) -> None:
        """A page of a stream reached the consumer."""
        if query.span is not None:
            query.span.add_event(PAGE_EVENT, {CASSANDRA_PAGE_NUMBER: page_number, "rows": rows})

    @staticmethod
    def event(query: QueryTrace, name: str) -> None:
        """Something worth seeing in the trace happened to the query (a stream cancelled, ...)."""
        if query.span is not None:
            query.span.add_event(name)


def _start_attributes(
    summary: CqlSummary,
    session_keyspace: str | None,
    *,
    idempotent: bool,
    operation: str | None,
    name: str,
    batch_size: int | None,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        DB_SYSTEM_NAME: "cassandra",
        DB_OPERATION_NAME: operation or summary.operation,
        DB_QUERY_SUMMARY: name,
        CASSANDRA_QUERY_IDEMPOTENT: idempotent,
    }
    if summary.text:
        attributes[DB_QUERY_TEXT] = summary.text
    namespace = summary.namespace(session_keyspace)
    if namespace:
        attributes[DB_NAMESPACE] = namespace
    if summary.table:
        attributes[DB_COLLECTION_NAME] = summary.table
    if batch_size is not None:
        attributes[DB_OPERATION_BATCH_SIZE] = batch_size
    return attributes


def _record_attempts(span: Span, response_future: Any, attributes: dict[str, Any]) -> None:
    # attempted_hosts is public: every host a request was sent to, in sending order: retries,
    # speculative attempts, and a resend to the same node after it asked for the statement to be
    # prepared again (a restarted node forgets prepared statements).
    hosts = getattr(response_future, "attempted_hosts", None)
    if not hosts or len(hosts) < 2:
        return
    extra = len(hosts) - 1
    retries = min(retry_count(response_future), extra)
    fired = getattr(speculative_plan(response_future), "fired", 0)
    speculative = min(fired if isinstance(fired, int) else 0, extra - retries)
    resends = extra - retries - speculative
    attributes[CASSANDRA_RETRIES] = retries
    attributes[CASSANDRA_SPECULATIVE_EXECUTIONS] = speculative
    kinds = [
        kind
        for kind, count in (("retry", retries), ("speculative", speculative), ("resend", resends))
        if count
    ]
    later = kinds[0] if len(kinds) == 1 else "mixed"
    for number, host in enumerate(hosts, start=1):
        event: dict[str, Any] = {
            CASSANDRA_ATTEMPT_NUMBER: number,
            CASSANDRA_ATTEMPT_KIND: "initial" if number == 1 else later,
            SERVER_ADDRESS: str(host.endpoint.address),
        }
        if host.endpoint.port:
            event[SERVER_PORT] = int(host.endpoint.port)
        span.add_event(ATTEMPT_EVENT, event)


def _response_attributes(response_future: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    message = response_future.message
    consistency = getattr(message, "consistency_level", None)
    if consistency is not None:
        attributes[CASSANDRA_CONSISTENCY_LEVEL] = _CONSISTENCY_NAMES.get(consistency, "")
    fetch_size = getattr(message, "fetch_size", None)
    if fetch_size:
        attributes[CASSANDRA_PAGE_SIZE] = fetch_size
    # coordinator_host is set once an answer (rows or an error) came from a node; on a client-side
    # timeout only the node last tried is known.
    coordinator = response_future.coordinator_host
    host = coordinator or attempted_host(response_future)
    if host is None:
        return attributes
    if coordinator is not None:
        if host.host_id is not None:
            attributes[CASSANDRA_COORDINATOR_ID] = str(host.host_id)
        if host.datacenter:
            attributes[CASSANDRA_COORDINATOR_DC] = host.datacenter
    endpoint = host.endpoint
    attributes[SERVER_ADDRESS] = str(endpoint.address)
    if endpoint.port:
        attributes[SERVER_PORT] = int(endpoint.port)
    return attributes
