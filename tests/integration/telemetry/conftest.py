"""Fixtures for the telemetry tests: the service in process with its spans kept in memory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.app import create_app
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.telemetry import Telemetry
from cqlstar.telemetry.setup import INSTRUMENTATION_SCOPE, service_resource


@pytest.fixture(scope="session")
def traced() -> Telemetry:
    """Tracing for the app under test, on the process's global SDK provider (the one the
    Cassandra layer takes its tracer from), installed here when nobody installed one before."""
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        provider = TracerProvider(resource=service_resource())
        trace.set_tracer_provider(provider)
    else:
        assert isinstance(current, TracerProvider), f"not the SDK's provider: {current!r}"
        provider = current
    return Telemetry(
        tracer=provider.get_tracer(INSTRUMENTATION_SCOPE), provider=provider, owns_provider=False
    )


@pytest.fixture(scope="session")
def span_store(traced: Telemetry) -> InMemorySpanExporter:
    """Every span the app under test records: what an OTLP exporter would be handed."""
    assert traced.provider is not None
    store = InMemorySpanExporter()
    traced.provider.add_span_processor(SimpleSpanProcessor(store))
    return store


@pytest.fixture
def spans(span_store: InMemorySpanExporter) -> Callable[[], list[ReadableSpan]]:
    """The spans finished since this test started."""
    span_store.clear()
    return lambda: list(span_store.get_finished_spans())


@pytest.fixture(scope="module")
async def traced_client(
    app_env: dict[str, str], traced: Telemetry
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The whole app in this process (for its spans), connected to the run's keyspace."""
    app = create_app(Settings.from_env(app_env), tracing=traced)
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
