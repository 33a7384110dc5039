"""Structured logs: one JSON object per line on stderr, tied to traces.

Every record logged while a span is current carries that span's `trace_id` and `span_id`, so a log
line leads to its trace (the access line of `cqlstar.telemetry.http` is one of those). Fields passed
with `extra={...}` become keys of the object; a record's exception becomes an `exception` string.

Records are formatted on the thread that logs them (the only place the current span is known) and
written by a background thread through a queue, so a slow reader on stderr never stalls the event
loop. Logging is process-wide, like the root logger it hangs off: `configure_logging` installs the
pipeline once and later calls only adjust the level.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

import msgspec
from opentelemetry import trace

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _encode_fallback(value: Any) -> str:
    # Values msgspec cannot encode natively (exceptions, hosts, ...) are logged as their text.
    return str(value)


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one line of JSON with the current trace context."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder(enc_hook=_encode_fallback)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return self._encoder.encode(entry).decode()


class _AlreadyFormatted(logging.Formatter):
    """The writer thread's formatter: the queued record's message is the finished JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test runners swap it), like logging's own
    last-resort handler."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


class LogPipeline:
    """Root handler -> queue -> writer thread -> stream (default: the current stderr)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self.handler = logging.handlers.QueueHandler(self._queue)
        self.handler.setFormatter(JsonLogFormatter())
        writer = _CurrentStderrHandler() if stream is None else logging.StreamHandler(stream)
        writer.setFormatter(_AlreadyFormatted())
        self._listener = logging.handlers.QueueListener(self._queue, writer)
        self._lock = threading.Lock()
        self._listener.start()

    def flush(self) -> None:
        """Write every record queued so far (at shutdown: the process may exit without atexit)."""
        with self._lock:
            self._listener.stop()  # drains the queue, then joins the writer thread
            self._listener.start()


_pipeline: LogPipeline | None = None
_pipeline_lock = threading.Lock()


def configure_logging(level: str | int, stream: IO[str] | None = None) -> LogPipeline:
    """Send every log record through the JSON pipeline at `level` (e.g. settings.log_level).

    `stream` (default stderr) is used only by the call that installs the pipeline.
    """
    global _pipeline  # noqa: PLW0603 (one per process, like the root logger)
    root = logging.getLogger()
    with _pipeline_lock:
        if _pipeline is None:
            _pipeline = LogPipeline(stream)
            root.addHandler(_pipeline.handler)
        root.setLevel(level)
        return _pipeline
