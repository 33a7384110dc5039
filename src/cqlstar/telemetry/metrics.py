"""The figures `GET /metrics` reports, fed by the same instrumentation points as the spans.

The service has one instrumentation point per request (`cqlstar.telemetry.http`, which also makes
the SERVER span) and one per Cassandra query (the async layer's query telemetry, which also makes
the CLIENT span and tells its query listener). Both feed `ServiceMetrics` directly, whether or not a
span is recorded, so the figures count every request and query exactly, whatever the sampling, and
cost a few additions when nothing is traced at all:

- requests: `total_requests`, and `active_connections` = requests started and not yet finished;
- queries: `total_queries`, `errors_count` (queries that failed), `average_query_time_ms` (over
  the life of the process), `queries_per_second` and the `query_performance` percentiles (over the
  last `WINDOW_S` seconds).

The same points also feed labelled series for the Prometheus exposition (`series()`): requests and
their durations by route template, method and status (a request that matched no route counts as
route `unmatched`), and queries, query errors and their durations by operation and table. Every
label comes from a bounded set: route templates and statement summaries, never raw paths.

The points run on the event loop, but an app may be served by several loops in one process (tests
do this), so state sits behind one lock; the work under it is a few additions, a bucket search and a
deque append. Sorting for percentiles happens only when the figures are read.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import msgspec

# The recent window for the rate and the percentiles.
WINDOW_S = 60
# At most this many recent query durations are kept for the percentiles: under heavy load the window
# is the last `MAX_RECENT_QUERIES` queries rather than the last minute, so memory stays bounded.
MAX_RECENT_QUERIES = 10_000

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000

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


class ServiceFigures(msgspec.Struct, frozen=True, kw_only=True):
    """This process's traffic so far. Counters only grow."""

    total_queries: int
    errors_count: int
    queries_per_second: float
    average_query_time_ms: float
    active_connections: int
    total_requests: int
    query_performance: QueryPerformance


class ServiceMetrics:
    """Running totals, labelled series, and a recent window of query latencies."""

    def __init__(self, *, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._started_ns = self._clock_ns()
        self._total_requests = 0
        self._requests_in_flight = 0
        self._total_queries = 0
        self._query_errors = 0
        self._query_time_ns = 0
        # Queries finished per second of the clock, in a ring indexed by second % WINDOW_S. A slot is
        # reused (and reset) when a later second lands on it, so no timer is needed to expire them.
        self._second_of_slot = [-1] * WINDOW_S
        self._queries_in_slot = [0] * WINDOW_S
        # (end time, duration) of recent queries, newest last.
        self._recent: deque[tuple[int, int]] = deque(maxlen=MAX_RECENT_QUERIES)
        self._request_series: dict[tuple[str, str, str], HistogramSeries] = {}
        self._query_series: dict[tuple[str, str], HistogramSeries] = {}

    def request_started(self) -> None:
        with self._lock:
            self._requests_in_flight += 1

    def request_ended(self, route: str | None, method: str, status: int, duration_ns: int) -> None:
        """A request answered (`status` 0: the client left before any answer)."""
        labels = (route or UNMATCHED_ROUTE, method, str(status))
        with self._lock:
            self._total_requests += 1
            self._requests_in_flight -= 1
            series = self._request_series.get(labels)
            if series is None:
                series = self._request_series[labels] = HistogramSeries()
            series.observe(duration_ns / _NS_PER_S)

    def query_ended(self, operation: str, table: str, duration_ns: int, failed: bool) -> None:
        """The async layer's query listener (`AsyncCluster(query_listener=...)`)."""
        end_ns = self._clock_ns()
        second = end_ns // _NS_PER_S
        slot = second % WINDOW_S
        labels = (operation, table)
        with self._lock:
            query_series = self._query_series.get(labels)
            if query_series is None:
                query_series = self._query_series[labels] = HistogramSeries()
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

    def figures(self) -> ServiceFigures:
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
        return ServiceFigures(
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
