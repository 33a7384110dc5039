"""TelemetryPlugin + MetricsController on a Litestar app without Cassandra: the wiring, the
shutdown flush, and the connection figures read from a driver session's pool state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.database import CassandraConnection
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.system.metrics import MetricsController, pool_connections
from cqlstar.telemetry import Telemetry, TelemetryPlugin


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def telemetry(exported: InMemorySpanExporter) -> Iterator[Telemetry]:
    provider = TracerProvider(shutdown_on_exit=False)
    # Exports only when flushed: the schedule delay is far longer than the test.
    provider.add_span_processor(BatchSpanProcessor(exported, schedule_delay_millis=3_600_000))
    yield Telemetry(tracer=provider.get_tracer("cqlstar.http"), provider=provider)
    provider.shutdown()


def make_app(telemetry: Telemetry) -> Litestar:
    # Never started, so its `session` raises CassandraUnavailable, as before the first connect.
    settings = Settings(auth="disabled")
    connection = CassandraConnection(settings)
    plugin = TelemetryPlugin(log_level="WARNING", telemetry=telemetry)
    services = Services(
        settings=settings,
        cassandra=connection,
        user_repository=None,  # type: ignore[arg-type]  # no route here reads them
        stream_slots=None,  # type: ignore[arg-type]
        redis=None,
        rate_limiter=None,  # type: ignore[arg-type]
        telemetry=telemetry,
    )
    app = Litestar(
        route_handlers=[MetricsController],
        state=services.state(),
        dependencies={"connection": Provide(lambda: connection, sync_to_thread=False)},
        plugins=[plugin],
    )
    return plugin.instrument(app)


async def test_metrics_route_reports_request_figures(telemetry: Telemetry) -> None:
    app = make_app(telemetry)
    assert app.logging_config is None  # the JSON pipeline replaces Litestar's handlers
    async with AsyncTestClient(app) as client:
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/metrics")).status_code == 200
        body = (await client.get("/metrics")).json()
    assert body["total_requests"] == 2  # the 404 and the first /metrics
    assert body["active_connections"] == 1  # the request reading the figures
    assert body["total_queries"] == 0
    assert body["cassandra_connections"] == {"active": 0, "total": 0}
    assert body["query_performance"] == {
        "avg_response_time_ms": 0.0,
        "p95_response_time_ms": 0.0,
        "p99_response_time_ms": 0.0,
    }


async def test_shutdown_flushes_queued_spans(
    telemetry: Telemetry, exported: InMemorySpanExporter
) -> None:
    app = make_app(telemetry)
    async with AsyncTestClient(app) as client:
        await client.get("/metrics")
        await client.get("/missing")
        assert exported.get_finished_spans() == ()  # still queued in the batch processor
    names = sorted(span.name for span in exported.get_finished_spans())
    assert names == ["GET", "GET /metrics"]


class FakeDriverSession:
    def __init__(self, pool_state: dict[Any, dict[str, Any]]) -> None:
        self.pool_state = pool_state

    def get_pool_state(self) -> dict[Any, dict[str, Any]]:
        return self.pool_state


def test_pool_connections_counts_open_and_busy_connections() -> None:
    session = FakeDriverSession(
        {
            "10.0.0.1": {"shutdown": False, "open_count": 2, "in_flights": [0, 3]},
            "10.0.0.2": {"shutdown": False, "open_count": 1, "in_flights": [1]},
            "10.0.0.3": {"shutdown": True, "open_count": 1, "in_flights": [5]},  # being removed
            "10.0.0.4": {"shutdown": False, "open_count": 0, "in_flights": []},  # host down
        }
    )
    figures = pool_connections(session)
    assert figures.total == 3
    assert figures.active == 2
