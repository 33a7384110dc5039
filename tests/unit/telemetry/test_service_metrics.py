"""ServiceMetrics: the /metrics figures from the request and query instrumentation points, with a
chosen clock."""

from __future__ import annotations

import threading

import pytest

from cqlstar.telemetry.metrics import MAX_RECENT_QUERIES, WINDOW_S, ServiceMetrics

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000 * NS  # an arbitrary monotonic instant, whole second


class FakeClock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def metrics(clock: FakeClock) -> ServiceMetrics:
    return ServiceMetrics(clock_ns=clock)


def query(
    metrics: ServiceMetrics,
    clock: FakeClock,
    end_ns: int,
    duration_ms: float,
    *,
    failed: bool = False,
) -> None:
    clock.now_ns = end_ns
    metrics.query_ended("SELECT", "users", int(duration_ms * MS), failed)


def test_nothing_seen_yet(metrics: ServiceMetrics) -> None:
    figures = metrics.figures()
    assert figures.total_queries == 0
    assert figures.total_requests == 0
    assert figures.errors_count == 0
    assert figures.queries_per_second == 0.0
    assert figures.average_query_time_ms == 0.0
    assert figures.active_connections == 0
    assert figures.query_performance.p99_response_time_ms == 0.0


def test_counts_queries_errors_and_average(metrics: ServiceMetrics, clock: FakeClock) -> None:
    query(metrics, clock, T0 + 1 * NS, 2.0)
    query(metrics, clock, T0 + 2 * NS, 4.0, failed=True)
    query(metrics, clock, T0 + 3 * NS, 6.0)
    clock.now_ns = T0 + 10 * NS
    figures = metrics.figures()
    assert figures.total_queries == 3
    assert figures.errors_count == 1
    assert figures.average_query_time_ms == 4.0


def test_requests_and_requests_in_flight(metrics: ServiceMetrics) -> None:
    metrics.request_started()
    metrics.request_started()
    assert metrics.figures().active_connections == 2
    assert metrics.figures().total_requests == 0
    metrics.request_ended("/users", "GET", 200, 1000)
    figures = metrics.figures()
    assert figures.active_connections == 1
    assert figures.total_requests == 1
    metrics.request_ended(None, "GET", 404, 1000)
    assert metrics.figures().active_connections == 0
    assert metrics.figures().total_requests == 2


def test_rate_and_percentiles_cover_the_recent_window_only(
    metrics: ServiceMetrics, clock: FakeClock
) -> None:
    # Old traffic: 50 slow queries long before the window.
    for i in range(50):
        query(metrics, clock, T0 + i * MS, 500.0)
    now = T0 + 10 * WINDOW_S * NS
    # Recent traffic: 100 queries taking 1..100 ms, spread over the last 30 seconds.
    for i in range(100):
        query(metrics, clock, now - (30 * NS) + i * (NS // 4), float(i + 1))
    clock.now_ns = now
    figures = metrics.figures()
    assert figures.total_queries == 150
    assert figures.queries_per_second == pytest.approx(100 / WINDOW_S, abs=0.001)
    performance = figures.query_performance
    assert performance.avg_response_time_ms == 50.5
    assert performance.p95_response_time_ms == 95.0
    assert performance.p99_response_time_ms == 99.0
    # The lifetime average still includes the old, slow queries.
    assert figures.average_query_time_ms == pytest.approx((50 * 500 + 5050) / 150, abs=0.001)


def test_young_process_rate_is_over_its_age(metrics: ServiceMetrics, clock: FakeClock) -> None:
    for i in range(20):
        query(metrics, clock, T0 + i * (NS // 5), 1.0)
    clock.now_ns = T0 + 5 * NS
    assert metrics.figures().queries_per_second == 4.0


def test_window_memory_is_bounded(metrics: ServiceMetrics, clock: FakeClock) -> None:
    for i in range(MAX_RECENT_QUERIES + 500):
        query(metrics, clock, T0 + i * 1000, 3.0)
    clock.now_ns = T0 + 30 * NS
    figures = metrics.figures()
    assert figures.total_queries == MAX_RECENT_QUERIES + 500
    assert len(metrics._recent) == MAX_RECENT_QUERIES
    assert figures.query_performance.avg_response_time_ms == 3.0


def test_points_fed_from_many_threads_are_all_counted() -> None:
    metrics = ServiceMetrics()
    per_thread = 2000

    def work() -> None:
        for _ in range(per_thread):
            metrics.request_started()
            metrics.query_ended("SELECT", "users", 1000, False)
            metrics.request_ended("/", "GET", 200, 1000)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures = metrics.figures()
    assert figures.total_requests == 4 * per_thread
    assert figures.total_queries == 4 * per_thread
    assert figures.active_connections == 0


def test_labelled_series_are_by_route_method_status_and_by_operation_table() -> None:
    metrics = ServiceMetrics()
    for status in (200, 200, 404):
        metrics.request_started()
        metrics.request_ended("/users/{user_id}", "GET", status, 3 * MS)
    metrics.request_started()
    metrics.request_ended(None, "GET", 404, 1 * MS)
    metrics.query_ended("SELECT", "users", 2 * MS, False)
    metrics.query_ended("SELECT", "users", 4 * MS, True)
    series = metrics.series()
    assert series.requests[("/users/{user_id}", "GET", "200")].count == 2
    assert series.requests[("unmatched", "GET", "404")].count == 1
    users = series.queries[("SELECT", "users")]
    assert users.count == 2
    assert users.errors == 1
    assert users.sum_s == pytest.approx(0.006)
