"""JSON log lines: one object per line, extras as keys, trace ids inside a span."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from cqlstar.telemetry.logs import JsonLogFormatter, LogPipeline


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    provider = TracerProvider(shutdown_on_exit=False)
    yield provider.get_tracer("test")
    provider.shutdown()


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLogFormatter())
    log = logging.getLogger(f"test.json.{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, out
    log.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_basics(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = logger
    log.warning("disk %s is %d%% full", "sda", 93, extra={"host": "db-1", "free_bytes": 10})
    (entry,) = lines(out)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == log.name
    assert entry["message"] == "disk sda is 93% full"
    assert entry["host"] == "db-1"
    assert entry["free_bytes"] == 10
    assert isinstance(entry["timestamp"], str)
    assert entry["timestamp"].endswith("Z")
    assert "trace_id" not in entry  # no span is current


def test_inside_a_span_the_line_carries_its_ids(
    logger: tuple[logging.Logger, io.StringIO], tracer: Tracer
) -> None:
    log, out = logger
    with tracer.start_as_current_span("work") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = lines(out)
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


def test_exceptions_and_odd_values_stay_on_one_line(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = logger
    try:
        int("bad\nvalue")
    except ValueError:
        log.exception("failed", extra={"target": uuid.UUID(int=1), "obj": object()})
    assert len(out.getvalue().splitlines()) == 1
    (entry,) = lines(out)
    assert "ValueError: invalid literal" in str(entry["exception"])
    assert entry["target"] == "00000000-0000-0000-0000-000000000001"
    assert str(entry["obj"]).startswith("<object object")


def test_the_pipeline_formats_in_the_caller_and_writes_on_flush(tracer: Tracer) -> None:
    out = io.StringIO()
    pipeline = LogPipeline(out)
    log = logging.getLogger(f"test.pipeline.{uuid.uuid4().hex}")
    log.addHandler(pipeline.handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with tracer.start_as_current_span("request") as span:
            for i in range(100):
                log.info("line %d", i)
        pipeline.flush()
        entries = lines(out)
        assert [e["message"] for e in entries] == [f"line {i}" for i in range(100)]
        # Formatted on the logging thread, so the writer thread's lack of a span does not matter.
        assert {e["trace_id"] for e in entries} == {
            format(span.get_span_context().trace_id, "032x")
        }
    finally:
        log.removeHandler(pipeline.handler)
        pipeline.flush()
