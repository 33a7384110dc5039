"""The figures `GET /metrics` reports, computed from finished spans.

`SpanMetrics` is a span processor: every span the service records passes through `on_end`, so the
figures come from the same spans that are exported, not from a second set of counters that could
drift from them. Two kinds of span count:

- HTTP SERVER spans (one per request, made by `cqlstar.telemetry.http`): `total_requests`, and
  `active_connections` = requests started and not yet finished (the span is open).
- Cassandra CLIENT spans (one per query, made by `cqlstar.aiocassandra`, recognised by
  `db.system.name = "cassandra"`): `total_queries`, `errors_count` (query spans whose status is
  ERROR), `average_query_time_ms` (over the life of the process), `queries_per_second` and the
  `query_performance` percentiles (over the last `WINDOW_S` seconds).

The same spans also feed labelled series for the Prometheus exposition (`series()`): requests and
their durations by route template, method and status (from `http.route`, `http.request.method`,
`http.response.status_code`; a request that matched no route counts as route `unmatched`), and
queries, query errors and their durations by operation and table (`db.operation.name`,
`db.collection.name`). Every label comes from a bounded set: route templates, never raw paths.

`on_end` runs on whichever thread ends the span, so all state sits behind one lock; the work under
it is a few additions, a bucket search and a deque append. Sorting for percentiles happens only when
the figures are read.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import msgspec
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

# The recent window for the rate and the percentiles.
WINDOW_S = 60
# At most this many recent query durations are kept for the percentiles: under heavy load the window
# is the last `MAX_RECENT_QUERIES` queries rather than the last minute, so memory stays bounded.
MAX_RECENT_QUERIES = 10_000

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000
_DB_SYSTEM_KEYS = ("db.system.name", "db.system")  # current semconv name first, then the old one

# Histogram bucket bounds in seconds, shared by requests and queries: 1 ms to 10 s.
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"


class HistogramSeries:
    """One labelled histogram: counts per bucket (the last one above every bound) and their sum."""

    __slots__ = ("counts", "errors", "sum_s")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.sum_s = 0.0
        self.errors = 0

    def observe(self, seconds: float, failed: bool = False) -> None:
        self.counts[bisect.bisect_left(DURATION_BUCKETS_S, seconds)] += 1
        self.sum_s += seconds
        if failed:
            self.errors += 1

    def copy(self) -> HistogramSeries:
        twin = HistogramSeries()
        twin.counts = list(self.counts)
        twin.sum_s = self.sum_s
        twin.errors = self.errors
        return twin

    @property
    def count(self) -> int:
        return sum(self.counts)


class LabelledSeries(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the labelled series, for the Prometheus exposition."""

    # (route, method, status) -> histogram of request durations.
    requests: dict[tuple[str, str, str], HistogramSeries]
    # (operation, table) -> histogram of query durations, with the errors among them.
    queries: dict[tuple[str, str], HistogramSeries]
    requests_in_flight: int


class QueryPerformance(msgspec.Struct, frozen=True, kw_only=True):
    """Cassandra query latency over the recent window (0 when no query finished in it)."""

    avg_response_time_ms: float
    p95_response_time_ms: float
    p99_response_time_ms: float


class SpanFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the spans say about this process's traffic. Counters only grow."""

    total_queries: int
    errors_count: int
    queries_per_second: float
    average_query_time_ms: float
    active_connections: int
    total_requests: int
    query_performance: QueryPerformance


def is_cassandra_query(span: ReadableSpan) -> bool:
    if span.kind is not SpanKind.CLIENT:
        return False
    attributes = span.attributes or {}
    return any(attributes.get(key) == "cassandra" for key in _DB_SYSTEM_KEYS)


class SpanMetrics(SpanProcessor):
    """A span processor that keeps running totals and a recent window of query latencies."""

    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        # Span timestamps are wall-clock nanoseconds (time.time_ns), so the window uses the same clock.
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._started_ns = self._clock_ns()
        self._total_requests = 0
        self._requests_in_flight = 0
        self._total_queries = 0
        self._query_errors = 0
        self._query_time_ns = 0
        # Queries finished per wall-clock second, in a ring indexed by second % WINDOW_S. A slot is
        # reused (and reset) when a later second lands on it, so no timer is needed to expire them.
        self._second_of_slot = [-1] * WINDOW_S
        self._queries_in_slot = [0] * WINDOW_S
        # (end time, duration) of recent queries, newest last.
        self._recent: deque[tuple[int, int]] = deque(maxlen=MAX_RECENT_QUERIES)
        self._request_series: dict[tuple[str, str, str], HistogramSeries] = {}
        self._query_series: dict[tuple[str, str], HistogramSeries] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.kind is SpanKind.SERVER:
            with self._lock:
                self._requests_in_flight += 1

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            attributes = span.attributes or {}
            labels = (
                str(attributes.get("http.route") or UNMATCHED_ROUTE),
                str(attributes.get("http.request.method", "_OTHER")),
                str(attributes.get("http.response.status_code", 0)),
            )
            end_ns = span.end_time or self._clock_ns()
            seconds = max(0, end_ns - (span.start_time or end_ns)) / _NS_PER_S
            with self._lock:
                self._total_requests += 1
                self._requests_in_flight -= 1
                series = self._request_series.get(labels)
                if series is None:
                    series = self._request_series[labels] = HistogramSeries()
                series.observe(seconds)
            return
        if not is_cassandra_query(span):
            return
        attributes = span.attributes or {}
        query_labels = (
            str(attributes.get("db.operation.name", "OTHER")),
            str(attributes.get("db.collection.name", "")),
        )
        end_ns = span.end_time or self._clock_ns()
        duration_ns = max(0, end_ns - (span.start_time or end_ns))
        failed = span.status.status_code is StatusCode.ERROR
        second = end_ns // _NS_PER_S
        slot = second % WINDOW_S
        with self._lock:
            query_series = self._query_series.get(query_labels)
            if query_series is None:
                query_series = self._query_series[query_labels] = HistogramSeries()
            query_series.observe(duration_ns / _NS_PER_S, failed)
            self._total_queries += 1
            self._query_time_ns += duration_ns
            if failed:
                self._query_errors += 1
            if self._second_of_slot[slot] != second:
                self._second_of_slot[slot] = second
                self._queries_in_slot[slot] = 0
            self._queries_in_slot[slot] += 1
            self._recent.append((end_ns, duration_ns))

    def figures(self) -> SpanFigures:
        now_ns = self._clock_ns()
        now_s = now_ns // _NS_PER_S
        window_start_ns = now_ns - WINDOW_S * _NS_PER_S
        with self._lock:
            total_queries = self._total_queries
            query_time_ns = self._query_time_ns
            errors = self._query_errors
            total_requests = self._total_requests
            in_flight = self._requests_in_flight
            recent_count = sum(
                count
                for second, count in zip(self._second_of_slot, self._queries_in_slot, strict=True)
                if now_s - WINDOW_S < second <= now_s
            )
            recent = [d for end, d in self._recent if end > window_start_ns]
        # A process younger than the window has not had the whole window to serve queries.
        elapsed_s = min(float(WINDOW_S), max(1.0, (now_ns - self._started_ns) / _NS_PER_S))
        return SpanFigures(
            total_queries=total_queries,
            errors_count=errors,
            queries_per_second=round(recent_count / elapsed_s, 3),
            average_query_time_ms=_ms(query_time_ns / total_queries if total_queries else 0.0),
            active_connections=max(0, in_flight),
            total_requests=total_requests,
            query_performance=_performance(recent),
        )

    def series(self) -> LabelledSeries:
        with self._lock:
            return LabelledSeries(
                requests={k: v.copy() for k, v in self._request_series.items()},
                queries={k: v.copy() for k, v in self._query_series.items()},
                requests_in_flight=max(0, self._requests_in_flight),
            )

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _performance(durations_ns: list[int]) -> QueryPerformance:
    if not durations_ns:
        return QueryPerformance(
            avg_response_time_ms=0.0, p95_response_time_ms=0.0, p99_response_time_ms=0.0
        )
    ordered = sorted(durations_ns)
    return QueryPerformance(
        avg_response_time_ms=_ms(sum(ordered) / len(ordered)),
        p95_response_time_ms=_ms(_nearest_rank(ordered, 0.95)),
        p99_response_time_ms=_ms(_nearest_rank(ordered, 0.99)),
    )


def _nearest_rank(ordered: list[int], fraction: float) -> int:
    """The smallest value with at least `fraction` of the values at or below it."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _ms(nanoseconds: float) -> float:
    return round(nanoseconds / _NS_PER_MS, 3)
