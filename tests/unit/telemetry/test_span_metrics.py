"""SpanMetrics: the /metrics figures from real SDK spans with chosen timestamps."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from cqlstar.telemetry.metrics import MAX_RECENT_QUERIES, WINDOW_S, SpanMetrics

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000_000 * NS  # an arbitrary wall-clock instant, whole second


class FakeClock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def metrics(clock: FakeClock) -> SpanMetrics:
    return SpanMetrics(clock_ns=clock)


@pytest.fixture
def tracer(metrics: SpanMetrics) -> Iterator[Tracer]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(metrics)
    yield provider.get_tracer("test")
    provider.shutdown()


def query(
    tracer: Tracer,
    end_ns: int,
    duration_ms: float,
    *,
    failed: bool = False,
    db_system_key: str = "db.system.name",
) -> None:
    span = tracer.start_span(
        "SELECT ks.users",
        kind=SpanKind.CLIENT,
        attributes={db_system_key: "cassandra"},
        start_time=end_ns - int(duration_ms * MS),
    )
    if failed:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=end_ns)


def test_nothing_seen_yet(metrics: SpanMetrics) -> None:
    figures = metrics.figures()
    assert figures.total_queries == 0
    assert figures.total_requests == 0
    assert figures.errors_count == 0
    assert figures.queries_per_second == 0.0
    assert figures.average_query_time_ms == 0.0
    assert figures.active_connections == 0
    assert figures.query_performance.p99_response_time_ms == 0.0


def test_counts_queries_errors_and_average(
    tracer: Tracer, metrics: SpanMetrics, clock: FakeClock
) -> None:
    clock.now_ns = T0 + 10 * NS
    query(tracer, T0 + 1 * NS, 2.0)
    query(tracer, T0 + 2 * NS, 4.0, failed=True)
    query(tracer, T0 + 3 * NS, 6.0, db_system_key="db.system")  # the older semconv name counts too
    figures = metrics.figures()
    assert figures.total_queries == 3
    assert figures.errors_count == 1
    assert figures.average_query_time_ms == 4.0


def test_only_cassandra_client_spans_are_queries(tracer: Tracer, metrics: SpanMetrics) -> None:
    tracer.start_span(
        "SELECT", kind=SpanKind.CLIENT, attributes={"db.system.name": "postgresql"}
    ).end()
    tracer.start_span("internal", attributes={"db.system.name": "cassandra"}).end()
    tracer.start_span("GET /", kind=SpanKind.CLIENT).end()
    assert metrics.figures().total_queries == 0


def test_server_spans_count_requests_and_requests_in_flight(
    tracer: Tracer, metrics: SpanMetrics
) -> None:
    first = tracer.start_span("GET /users", kind=SpanKind.SERVER)
    second = tracer.start_span("GET /users", kind=SpanKind.SERVER)
    assert metrics.figures().active_connections == 2
    assert metrics.figures().total_requests == 0
    first.end()
    figures = metrics.figures()
    assert figures.active_connections == 1
    assert figures.total_requests == 1
    second.end()
    assert metrics.figures().active_connections == 0
    assert metrics.figures().total_requests == 2


def test_rate_and_percentiles_cover_the_recent_window_only(
    tracer: Tracer, metrics: SpanMetrics, clock: FakeClock
) -> None:
    # Old traffic: 50 slow queries long before the window.
    for i in range(50):
        query(tracer, T0 + i * MS, 500.0)
    clock.now_ns = T0 + 10 * WINDOW_S * NS
    # Recent traffic: 100 queries taking 1..100 ms, spread over the last 30 seconds.
    for i in range(100):
        query(tracer, clock.now_ns - (30 * NS) + i * (NS // 4), float(i + 1))
    figures = metrics.figures()
    assert figures.total_queries == 150
    assert figures.queries_per_second == pytest.approx(100 / WINDOW_S, abs=0.001)
    performance = figures.query_performance
    assert performance.avg_response_time_ms == 50.5
    assert performance.p95_response_time_ms == 95.0
    assert performance.p99_response_time_ms == 99.0
    # The lifetime average still includes the old, slow queries.
    assert figures.average_query_time_ms == pytest.approx((50 * 500 + 5050) / 150, abs=0.001)


def test_young_process_rate_is_over_its_age(
    tracer: Tracer, metrics: SpanMetrics, clock: FakeClock
) -> None:
    clock.now_ns = T0 + 5 * NS
    for i in range(20):
        query(tracer, T0 + i * (NS // 5), 1.0)
    assert metrics.figures().queries_per_second == 4.0


def test_window_memory_is_bounded(tracer: Tracer, metrics: SpanMetrics, clock: FakeClock) -> None:
    clock.now_ns = T0 + 30 * NS
    for i in range(MAX_RECENT_QUERIES + 500):
        query(tracer, T0 + i * 1000, 3.0)
    figures = metrics.figures()
    assert figures.total_queries == MAX_RECENT_QUERIES + 500
    assert len(metrics._recent) == MAX_RECENT_QUERIES
    assert figures.query_performance.avg_response_time_ms == 3.0


def test_spans_ended_on_many_threads_are_all_counted(tracer: Tracer, metrics: SpanMetrics) -> None:
    per_thread = 2000

    def work() -> None:
        for _ in range(per_thread):
            tracer.start_span("GET /", kind=SpanKind.SERVER).end()
            span = tracer.start_span(
                "q", kind=SpanKind.CLIENT, attributes={"db.system.name": "cassandra"}
            )
            span.end()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures = metrics.figures()
    assert figures.total_requests == 4 * per_thread
    assert figures.total_queries == 4 * per_thread
    assert figures.active_connections == 0
