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

from cqlstar.telemetry import logs
from cqlstar.telemetry.logs import JsonLogFormatter, LogPipeline, iso_timestamp, log_fields


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


class CountingStream(io.StringIO):
    """Counts the writes the pipeline makes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_queued_together_are_written_in_one_write() -> None:
    out = CountingStream()
    pipeline = LogPipeline(out)
    # Holding the writer inside flush() is not possible from here; queue a burst instead and check
    # that the writer needed far fewer writes than lines.
    lines = [json.dumps({"n": i}) for i in range(5000)]
    for line in lines:
        pipeline.submit(line)
    assert pipeline.flush(timeout_s=10)
    assert out.getvalue() == "".join(f"{line}\n" for line in lines)
    assert out.writes < len(lines) / 10


def test_iso_timestamp_is_utc_with_milliseconds() -> None:
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert iso_timestamp(1_767_225_599_999) == "2025-12-31T23:59:59.999Z"
    assert iso_timestamp(1_767_225_600_007) == "2026-01-01T00:00:00.007Z"


@pytest.fixture
def installed_pipeline() -> Iterator[tuple[LogPipeline, io.StringIO]]:
    """A pipeline installed as the process's, as configure_logging does, writing to a buffer.

    Tests call `alone_on_root` first: pytest adds its own capturing handlers to the root logger
    only once the test itself starts.
    """
    out = io.StringIO()
    pipeline = LogPipeline(out)
    root = logging.getLogger()
    previous, previous_handlers = logs._pipeline, root.handlers[:]
    logs._pipeline = pipeline
    yield pipeline, out
    logs._pipeline = previous
    root.handlers = previous_handlers


def alone_on_root(pipeline: LogPipeline) -> None:
    logging.getLogger().handlers = [pipeline.handler]


def test_log_fields_writes_the_same_line_as_logging_would(
    installed_pipeline: tuple[LogPipeline, io.StringIO], tracer: Tracer
) -> None:
    pipeline, out = installed_pipeline
    alone_on_root(pipeline)
    log = logging.getLogger(f"test.fields.{uuid.uuid4().hex}")
    log.setLevel(logging.INFO)
    fields = {"method": "GET", "route": None, "path": "/x", "status": 404, "duration_ms": 1.5}
    assert pipeline.writes_alone(log, logging.INFO)
    with tracer.start_as_current_span("request"):
        log_fields(log, logging.INFO, "request", fields)  # direct
        # The same through logging (a no-op filter makes log_fields take that path).
        log.addFilter(lambda record: True)
        assert not pipeline.writes_alone(log, logging.INFO)
        log_fields(log, logging.INFO, "request", fields)
    pipeline.flush()
    direct, logged = lines(out)
    assert direct.pop("timestamp") <= logged.pop("timestamp")
    assert list(direct.items()) == list(logged.items())
    assert direct["trace_id"]
    assert direct["path"] == "/x"


def test_log_fields_goes_through_logging_when_another_handler_listens(
    installed_pipeline: tuple[LogPipeline, io.StringIO],
) -> None:
    pipeline, out = installed_pipeline
    alone_on_root(pipeline)
    log = logging.getLogger(f"test.fields.{uuid.uuid4().hex}")
    log.setLevel(logging.INFO)
    records: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = records.append  # type: ignore[method-assign]
    log.addHandler(listener)
    assert not pipeline.writes_alone(log, logging.INFO)
    log_fields(log, logging.INFO, "request", {"status": 200})
    (record,) = records
    assert record.status == 200  # type: ignore[attr-defined]
    pipeline.flush()
    (line,) = lines(out)  # and it still propagated to the pipeline
    assert line["status"] == 200
    # Stopped on the way to the root: the pipeline is not the destination.
    log.removeHandler(listener)
    log.propagate = False
    assert not pipeline.writes_alone(log, logging.INFO)
    # A handler level above the record's also rules the direct path out.
    log.propagate = True
    pipeline.handler.setLevel(logging.WARNING)
    assert not pipeline.writes_alone(log, logging.INFO)
    assert pipeline.writes_alone(log, logging.ERROR)
