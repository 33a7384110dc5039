"""The Prometheus side of /metrics without a server: content negotiation, bounded labels, and a
collector whose exposition parses and carries the span figures."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from cqlstar.limits import InProcessWindow, RateLimiter
from cqlstar.realtime.metrics import WebSocketMetrics
from cqlstar.settings import Settings
from cqlstar.system.prometheus import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ServiceCollector,
    exposition_for,
    render,
)
from cqlstar.telemetry.counters import MAX_LABEL_VALUES, ServiceCounters
from cqlstar.telemetry.metrics import ServiceMetrics


def test_only_a_client_naming_an_exposition_gets_it() -> None:
    assert exposition_for("text/plain; version=0.0.4") == TEXT_CONTENT_TYPE
    assert exposition_for("application/openmetrics-text; version=1.0.0,text/plain;q=0.5") == (
        OPENMETRICS_CONTENT_TYPE
    )
    assert exposition_for("*/*") is None
    assert exposition_for("") is None
    assert exposition_for("application/json") is None


def test_label_values_stay_bounded() -> None:
    counters = ServiceCounters()
    for i in range(MAX_LABEL_VALUES + 10):
        counters.authentication_failed(f"reason-{i}")
    snapshot = counters.authentication_failures.snapshot()
    assert len(snapshot) == MAX_LABEL_VALUES + 1
    assert snapshot[("other",)] == 10


def test_the_exposition_counts_what_the_instrumentation_points_saw() -> None:
    metrics = ServiceMetrics()
    for status in (200, 200, 404):
        metrics.request_started()
        metrics.request_ended("/users/{user_id}", "GET", status, 2_000_000)
    metrics.query_ended("SELECT", "users", 1_000_000, True)
    counters = ServiceCounters()
    counters.authentication_failed("missing")
    websocket = WebSocketMetrics()
    websocket.messages[("GET_USER", 0)] += 2
    websocket.connections_open = 1
    websocket.auth_failures = 4
    limiter = RateLimiter(InProcessWindow(), Settings(auth="disabled"))
    limiter.rejected_total["ws"] += 3
    text = render(
        ServiceCollector(metrics, (1, 0), limiter, counters, websocket.figures()), TEXT_CONTENT_TYPE
    )
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    route = ("route", "/users/{user_id}")
    assert (
        samples[("cqlstar_http_requests_total", (("method", "GET"), route, ("status", "200")))] == 2
    )
    assert (
        samples[("cqlstar_http_requests_total", (("method", "GET"), route, ("status", "404")))] == 1
    )
    bucket = (
        "cqlstar_http_request_duration_seconds_bucket",
        (("le", "+Inf"), ("method", "GET"), route, ("status", "200")),
    )
    assert samples[bucket] == 2
    query = (("operation", "SELECT"), ("table", "users"))
    assert samples[("cqlstar_db_queries_total", query)] == 1
    assert samples[("cqlstar_db_query_errors_total", query)] == 1
    assert (
        samples[("cqlstar_websocket_messages_total", (("package", "GET_USER"), ("status", "0")))]
        == 2
    )
    assert samples[("cqlstar_websocket_connections", ())] == 1
    assert samples[("cqlstar_rate_limit_rejections_total", (("kind", "ws"),))] == 3
    assert samples[("cqlstar_cassandra_connections", (("state", "open"),))] == 1
    http_missing = (("reason", "missing"), ("transport", "http"))
    assert samples[("cqlstar_authentication_failures_total", http_missing)] == 1
    ws_refused = (("reason", "refused"), ("transport", "websocket"))
    assert samples[("cqlstar_authentication_failures_total", ws_refused)] == 4
    openmetrics = render(
        ServiceCollector(metrics, (1, 0), limiter, counters, websocket.figures()),
        OPENMETRICS_CONTENT_TYPE,
    )
    assert openmetrics.decode().endswith("# EOF\n")
