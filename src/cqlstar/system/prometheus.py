"""`GET /metrics` in the Prometheus text exposition (and OpenMetrics), for a scraper.

The figures are the JSON's, from the same sources, read at scrape time: the service's metrics
(`cqlstar.telemetry.metrics.ServiceMetrics`, fed by the points that also make the spans), the
driver's pools, the WebSocket API's counters (`cqlstar.realtime.metrics`), the rate limiter's counts
and `Services.counters` (refused HTTP credentials). Nothing is
counted twice or kept in a second registry that could drift; `prometheus_client` only renders.

Families (all prefixed `cqlstar_`; labels from bounded sets only):

| family | type | labels |
|---|---|---|
| `http_requests_total`, `http_request_duration_seconds` | counter, histogram | route (template), method, status |
| `http_requests_in_flight` | gauge | |
| `db_queries_total`, `db_query_errors_total`, `db_query_duration_seconds` | counter, counter, histogram | operation, table |
| `db_queries_per_second`, `db_query_recent_duration_seconds` | gauge (last minute) | stat (`avg`, `p95`, `p99`) |
| `cassandra_connections` | gauge | state (`open`, `busy`) |
| `websocket_connections` | gauge (open now) | |
| `websocket_connections_accepted_total` | counter | |
| `websocket_messages_total` | counter | package, status |
| `websocket_closes_total` | counter (closed by the server) | code |
| `broadcast_published_total`, `broadcast_publish_failures_total` | counter | |
| `broadcast_deliveries_total`, `broadcast_drops_total` | counter | |
| `broadcast_subscription_errors_total` | counter (reads Redis failed; retried) | |
| `rate_limit_rejections_total` | counter | kind (`http`, `login`, `ws`) |
| `rate_limit_unavailable_total` | counter (checks that failed open) | |
| `authentication_failures_total` | counter | transport (`http`, `websocket`), reason |

The WebSocket families are absent from an app built without the WebSocket API.

Per process, like the JSON: with several granian workers each scrape reaches one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest as text_exposition
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_exposition
from prometheus_client.registry import Collector, CollectorRegistry

from cqlstar.limits import RateLimiter
from cqlstar.realtime.metrics import WebSocketFigures
from cqlstar.telemetry.counters import ServiceCounters
from cqlstar.telemetry.metrics import (
    DURATION_BUCKETS_S,
    HistogramSeries,
    LabelledSeries,
    ServiceMetrics,
)

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_PREFIX = "cqlstar_"


def exposition_for(accept: str) -> str | None:
    """The content type to answer for an `Accept` header, or None for the JSON document.

    Only a client that names one of the two formats gets it (what a Prometheus scraper sends);
    anything else, `*/*` included, keeps the JSON `/metrics` always answered.
    """
    lowered = accept.lower()
    if "application/openmetrics-text" in lowered:
        return OPENMETRICS_CONTENT_TYPE
    if "text/plain" in lowered:
        return TEXT_CONTENT_TYPE
    return None


def _buckets(series: HistogramSeries) -> list[tuple[str, float]]:
    cumulative = 0
    out: list[tuple[str, float]] = []
    for bound, count in zip((*DURATION_BUCKETS_S, float("inf")), series.counts, strict=True):
        cumulative += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    return out


class ServiceCollector(Collector):
    def __init__(
        self,
        service_metrics: ServiceMetrics,
        connections: tuple[int, int],
        limiter: RateLimiter,
        counters: ServiceCounters,
        websocket: WebSocketFigures | None = None,
    ) -> None:
        self.service_metrics = service_metrics
        self.connections = connections
        self.limiter = limiter
        self.counters = counters
        self.websocket = websocket

    def collect(self) -> Iterator[Metric]:
        series = self.service_metrics.series()  # one consistent copy per scrape
        yield from self._http(series)
        yield from self._queries(series)
        yield from self._service_events()

    def _http(self, series: LabelledSeries) -> Iterable[Metric]:
        labels = ["route", "method", "status"]
        requests = CounterMetricFamily(
            _PREFIX + "http_requests",
            "HTTP requests answered (one SERVER span each)",
            labels=labels,
        )
        durations = HistogramMetricFamily(
            _PREFIX + "http_request_duration_seconds",
            "HTTP request durations (SERVER span durations)",
            labels=labels,
        )
        for key, histogram in sorted(series.requests.items()):
            requests.add_metric(list(key), histogram.count)
            durations.add_metric(list(key), _buckets(histogram), histogram.sum_s)
        in_flight = GaugeMetricFamily(
            _PREFIX + "http_requests_in_flight", "HTTP requests started and not yet answered"
        )
        in_flight.add_metric([], series.requests_in_flight)
        return [requests, durations, in_flight]

    def _queries(self, series: LabelledSeries) -> Iterable[Metric]:
        labels = ["operation", "table"]
        queries = CounterMetricFamily(
            _PREFIX + "db_queries", "Cassandra queries (one CLIENT span each)", labels=labels
        )
        errors = CounterMetricFamily(
            _PREFIX + "db_query_errors", "Cassandra queries that failed", labels=labels
        )
        durations = HistogramMetricFamily(
            _PREFIX + "db_query_duration_seconds",
            "Cassandra query durations, retries included",
            labels=labels,
        )
        for key, histogram in sorted(series.queries.items()):
            queries.add_metric(list(key), histogram.count)
            errors.add_metric(list(key), histogram.errors)
            durations.add_metric(list(key), _buckets(histogram), histogram.sum_s)
        figures = self.service_metrics.figures()
        rate = GaugeMetricFamily(
            _PREFIX + "db_queries_per_second", "Cassandra queries per second over the last minute"
        )
        rate.add_metric([], figures.queries_per_second)
        recent = GaugeMetricFamily(
            _PREFIX + "db_query_recent_duration_seconds",
            "Cassandra query latency over the last minute",
            labels=["stat"],
        )
        performance = figures.query_performance
        recent.add_metric(["avg"], performance.avg_response_time_ms / 1000)
        recent.add_metric(["p95"], performance.p95_response_time_ms / 1000)
        recent.add_metric(["p99"], performance.p99_response_time_ms / 1000)
        connections = GaugeMetricFamily(
            _PREFIX + "cassandra_connections",
            "The driver's pooled connections: open, and busy (a request in flight)",
            labels=["state"],
        )
        connections.add_metric(["open"], self.connections[0])
        connections.add_metric(["busy"], self.connections[1])
        return [queries, errors, durations, rate, recent, connections]

    def _websocket(self, ws: WebSocketFigures) -> Iterable[Metric]:
        connections = GaugeMetricFamily(
            _PREFIX + "websocket_connections", "Open WebSocket connections"
        )
        connections.add_metric([], ws.connections_open)
        # Not `websocket_connections_total`: the gauge above owns that base name.
        accepted = CounterMetricFamily(
            _PREFIX + "websocket_connections_accepted", "WebSocket connections accepted"
        )
        accepted.add_metric([], ws.connections_total)
        messages = CounterMetricFamily(
            _PREFIX + "websocket_messages",
            "WebSocket requests answered, by package and status code",
            labels=["package", "status"],
        )
        for package, by_status in sorted(ws.messages.items()):
            for status, count in sorted(by_status.items()):
                messages.add_metric([package, str(status)], count)
        closes = CounterMetricFamily(
            _PREFIX + "websocket_closes",
            "WebSocket connections closed by the server, by close code",
            labels=["code"],
        )
        for code, count in sorted(ws.closes.items()):
            closes.add_metric([str(code)], count)
        families: list[Metric] = [messages, closes]
        for name, value, help_text in (
            ("broadcast_published", ws.broadcast_published, "User changes published"),
            (
                "broadcast_publish_failures",
                ws.broadcast_publish_failures,
                "User changes that could not be published",
            ),
            (
                "broadcast_deliveries",
                ws.broadcast_deliveries,
                "Broadcast events handed to a reader",
            ),
            (
                "broadcast_drops",
                ws.broadcast_drops,
                "Broadcast events not delivered: the reader's backlog was full",
            ),
            (
                "broadcast_subscription_errors",
                ws.broadcast_subscription_errors,
                "Reads of the broadcast subscription that Redis failed (retried)",
            ),
        ):
            family = CounterMetricFamily(_PREFIX + name, help_text)
            family.add_metric([], value)
            families.append(family)
        return [connections, accepted, *families]

    def _service_events(self) -> Iterable[Metric]:
        if self.websocket is not None:
            yield from self._websocket(self.websocket)
        rejections = CounterMetricFamily(
            _PREFIX + "rate_limit_rejections",
            "Requests and messages refused by a rate limit",
            labels=["kind"],
        )
        for kind in ("http", "login", "ws"):
            rejections.add_metric([kind], self.limiter.rejected_total[kind])
        yield rejections
        unavailable = CounterMetricFamily(
            _PREFIX + "rate_limit_unavailable",
            "Rate limit checks that failed open because Redis did not answer",
        )
        unavailable.add_metric([], self.limiter.unavailable_total)
        yield unavailable
        auth = CounterMetricFamily(
            _PREFIX + "authentication_failures",
            "Requests and WebSocket connections refused for missing or invalid credentials",
            labels=["transport", "reason"],
        )
        for (reason,), count in sorted(self.counters.authentication_failures.snapshot().items()):
            auth.add_metric(["http", reason], count)
        if self.websocket is not None:
            auth.add_metric(["websocket", "refused"], self.websocket.auth_failures)
        yield auth


def render(collector: ServiceCollector, content_type: str) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if content_type == OPENMETRICS_CONTENT_TYPE:
        body: bytes = openmetrics_exposition(registry)  # type: ignore[no-untyped-call]
        return body
    return text_exposition(registry)
