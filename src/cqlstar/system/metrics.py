"""`GET /metrics`: this process's traffic figures plus the driver's connections.

Everything except `cassandra_connections` comes from `cqlstar.telemetry.ServiceMetrics`, fed by the
same instrumentation points that make the spans (see that module for what each figure counts). The
figures are per process: with several granian workers, each answers for itself.

`cassandra_connections` is read from the driver when asked:
- `total`: connections open right now in the session's pools, across all hosts (the driver keeps
  one per host with protocol v5); the cluster's separate control connection is not counted;
- `active`: of those, the ones with at least one request in flight at this moment.
Both are 0 while the service is not connected to Cassandra.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from cqlstar.database import CassandraConnection, CassandraUnavailable
from cqlstar.identity import OPEN_ROUTE
from cqlstar.realtime.metrics import WebSocketFigures
from cqlstar.services import Services
from cqlstar.system.prometheus import ServiceCollector, exposition_for, render
from cqlstar.telemetry import ServiceFigures


class CassandraConnections(msgspec.Struct, frozen=True, kw_only=True):
    active: int
    total: int


class Metrics(ServiceFigures, frozen=True, kw_only=True):
    """The span figures plus the driver's connection counts."""

    cassandra_connections: CassandraConnections
    # The WebSocket API's counters (`cqlstar.realtime.metrics`); null in an app without it.
    websocket: WebSocketFigures | None


def pool_connections(driver_session: Any) -> CassandraConnections:
    """Count the open and busy connections in a driver `Session`'s host pools.

    `get_pool_state()` reads counters the pools already keep (no locks, no I/O): per host the
    number of open connections and each connection's in-flight request count.
    """
    open_connections = busy = 0
    for state in driver_session.get_pool_state().values():
        if state["shutdown"]:
            continue
        open_connections += state["open_count"]
        busy += sum(1 for in_flight in state["in_flights"] if in_flight > 0)
    return CassandraConnections(active=min(busy, open_connections), total=open_connections)


def cassandra_connections(connection: CassandraConnection) -> CassandraConnections:
    try:
        session = connection.session
    except CassandraUnavailable:
        return CassandraConnections(active=0, total=0)
    return pool_connections(session.driver_session)


def _websocket_figures(state: State) -> WebSocketFigures | None:
    """The WebSocket counters, or None in an app built without the WebSocket API."""
    try:
        realtime = Services.of(state).realtime
    except KeyError:  # an app with no services at all (the route alone, in unit tests)
        return None
    return None if realtime is None else realtime.metrics.figures()


class MetricsController(Controller):
    tags = ["system"]
    opt = OPEN_ROUTE

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Request and query figures of this process",
        cache=False,
    )
    async def metrics(
        self,
        request: Request[Any, Any, Any],
        state: State,
        connection: NamedDependency[CassandraConnection],
    ) -> Response[Metrics] | Response[bytes]:
        """Counts of requests and Cassandra queries, the query error count, the query rate and
        latency percentiles over the last minute, requests in flight, and the driver's open and busy
        connections. Every request and query counts, whatever the trace sampling; counters only
        grow.

        With `Accept: text/plain` or `application/openmetrics-text` (what a Prometheus scraper
        sends): the Prometheus text exposition of the same figures, plus requests and durations by
        route, method and status, queries by operation and table, WebSocket connections and
        messages, broadcasts, rate limit rejections and authentication failures."""
        services = Services.of(state)
        metrics = services.telemetry.metrics
        pools = cassandra_connections(connection)
        websocket = _websocket_figures(state)
        content_type = exposition_for(request.headers.get("accept", ""))
        if content_type is not None:
            collector = ServiceCollector(
                metrics,
                (pools.total, pools.active),
                services.rate_limiter,
                services.counters,
                websocket,
            )
            return Response(render(collector, content_type), media_type=content_type)
        return Response(
            Metrics(
                **msgspec.structs.asdict(metrics.figures()),
                cassandra_connections=pools,
                websocket=websocket,
            )
        )
