"""Fixtures for the telemetry tests: the service in process with its spans kept in memory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.app import create_app
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.telemetry import setup_telemetry


@pytest.fixture(scope="session")
def span_store() -> InMemorySpanExporter:
    """Every span this test process records, next to whatever the process exports.

    Attached to the process's provider (the one the app and the Cassandra layer both use), so it
    sees exactly what an OTLP exporter would be handed.
    """
    telemetry = setup_telemetry()
    assert telemetry.provider is not None, "OTEL_SDK_DISABLED is set: nothing to test"
    store = InMemorySpanExporter()
    telemetry.provider.add_span_processor(SimpleSpanProcessor(store))
    return store


@pytest.fixture
def spans(span_store: InMemorySpanExporter) -> Callable[[], list[ReadableSpan]]:
    """The spans finished since this test started."""
    span_store.clear()
    return lambda: list(span_store.get_finished_spans())


@pytest.fixture(scope="module")
async def traced_client(app_env: dict[str, str]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The whole app in this process (for its spans), connected to the run's keyspace."""
    app = create_app(Settings.from_env(app_env))
    async with AsyncTestClient(app) as client:
        # The test client runs the app on its own thread and event loop: wait for the connection
        # there, from a worker thread so this loop stays free.
        connected = await asyncio.to_thread(
            client.blocking_portal.call, Services.of(app.state).cassandra.wait_connected, 60
        )
        assert connected, "Cassandra did not connect"
        yield client


@pytest.fixture
def marked_user() -> dict[str, Any]:
    """A user body whose name and email occur nowhere else, to look for in spans."""
    mark = uuid.uuid4().hex
    return {"name": f"Tracey {mark}", "email": f"tracey.{mark}@example.com", "age": 41}
