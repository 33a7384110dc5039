"""The per-attempt events of a query span: which hosts were tried, and why (retry or speculative)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cassandra.cluster import ResponseFuture
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqlstar.aiocassandra._driver import retry_count
from cqlstar.aiocassandra.cql import summarize
from cqlstar.aiocassandra.telemetry import QueryTelemetry


@dataclass
class _Endpoint:
    address: str
    port: int = 9042


@dataclass
class _Host:
    endpoint: _Endpoint
    host_id: Any = None
    datacenter: str = "datacenter1"


@dataclass
class _Future:
    """What the telemetry reads of a driver ResponseFuture once the answer is in."""

    attempted_hosts: list[_Host]
    _query_retries: int = 0
    _spec_execution_plan: Any = None
    message: Any = None
    coordinator_host: Any = None
    _current_host: Any = field(default=None)


def _host(n: int) -> _Host:
    return _Host(_Endpoint(f"127.0.0.{n}"))


def _finished(future: _Future, **kwargs: Any) -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = QueryTelemetry(provider)
    span = telemetry.start(summarize("SELECT * FROM ks.t WHERE k = ?"), None, None)
    assert span is not None
    future.coordinator_host = future.attempted_hosts[-1]
    telemetry.succeed(span, future, 1, **kwargs)
    (finished,) = exporter.get_finished_spans()
    return finished


def _attempts(span: Any) -> list[tuple[int, str, str]]:
    return [
        (
            e.attributes["cassandra.attempt.number"],
            e.attributes["cassandra.attempt.kind"],
            e.attributes["server.address"],
        )
        for e in span.events
        if e.name == "cassandra.attempt"
    ]


def test_one_attempt_adds_no_event() -> None:
    span = _finished(_Future([_host(2)]))
    assert _attempts(span) == []
    assert "cassandra.retries" not in span.attributes
    assert span.attributes["server.address"] == "127.0.0.2"


class _Plan:
    def __init__(self, fired: int) -> None:
        self.fired = fired


def test_speculative_attempts_name_each_host() -> None:
    span = _finished(_Future([_host(2), _host(3), _host(4)], _spec_execution_plan=_Plan(2)))
    assert _attempts(span) == [
        (1, "initial", "127.0.0.2"),
        (2, "speculative", "127.0.0.3"),
        (3, "speculative", "127.0.0.4"),
    ]
    assert span.attributes["cassandra.speculative_executions"] == 2
    assert span.attributes["cassandra.retries"] == 0


def test_retries_are_told_apart_from_speculation() -> None:
    span = _finished(_Future([_host(2), _host(2)], _query_retries=1))
    assert _attempts(span) == [(1, "initial", "127.0.0.2"), (2, "retry", "127.0.0.2")]
    assert span.attributes["cassandra.retries"] == 1
    assert span.attributes["cassandra.speculative_executions"] == 0


def test_a_resend_after_a_reprepare_is_neither() -> None:
    span = _finished(_Future([_host(4), _host(4)]))
    assert _attempts(span) == [(1, "initial", "127.0.0.4"), (2, "resend", "127.0.0.4")]
    assert span.attributes["cassandra.retries"] == 0
    assert span.attributes["cassandra.speculative_executions"] == 0


def test_several_kinds_in_one_request_are_reported_as_mixed() -> None:
    future = _Future(
        [_host(2), _host(3), _host(4)], _query_retries=1, _spec_execution_plan=_Plan(1)
    )
    span = _finished(future)
    assert [kind for _, kind, _ in _attempts(span)] == ["initial", "mixed", "mixed"]
    assert span.attributes["cassandra.retries"] == 1
    assert span.attributes["cassandra.speculative_executions"] == 1


def test_pages_are_not_broken_down() -> None:
    span = _finished(_Future([_host(2), _host(3)]), attempts=False)
    assert _attempts(span) == []


def test_the_driver_still_counts_retries_where_the_layer_reads_them() -> None:
    # The fence around the one private driver attribute the telemetry reads: if a driver upgrade
    # renames it, this fails instead of spans silently reporting zero retries.
    assert ResponseFuture._query_retries == 0
    assert retry_count(_Future([_host(2)], _query_retries=2)) == 2
