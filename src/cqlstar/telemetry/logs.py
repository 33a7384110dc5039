"""Structured logs: one JSON object per line on stderr, tied to traces.

Every record logged while a span is current carries that span's `trace_id` and `span_id`, so a log
line leads to its trace (the access line of `cqlstar.telemetry.http` is one of those). Fields passed
with `extra={...}` become keys of the object; a record's exception becomes an `exception` string.

Lines are formatted on the thread that logs them (the only place the current span is known) and
written by a background thread, so a slow reader on stderr never stalls the event loop. The writer
wakes for the first line, lets `BATCH_WINDOW_S` pass, and writes everything queued by then with one
`write` and one `flush`: under load that is one system call (and one hand-over of the GIL) per batch
instead of per line, and lines reach stderr at most that much later. Logging is
process-wide, like the root logger it hangs off: `configure_logging` installs the pipeline once and
later calls only adjust the level.

`log_fields` is the per-request path (the access line): when the JSON pipeline is the only place a
record would go, which is how the service runs, it skips the `LogRecord` machinery (caller lookup,
record construction, handler locks) and encodes the line from a small dict in one msgspec call. When
anything else would see the record (another handler, a filter, `propagate = False` somewhere), it
logs through `logging` as usual, so the result is the same line either way.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import traceback
from typing import IO, Any

import msgspec
from opentelemetry import trace

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# The writer takes at most this many lines per write, so one burst cannot build an unbounded string.
MAX_LINES_PER_WRITE = 4096
# Once a line arrives, the writer lets this long pass before it takes what is queued: under load the
# lines of the window go out in one write, and the logging thread's `put` rarely has a sleeping
# writer to wake (each wake-up is a thread switch and a GIL hand-over on the request path).
BATCH_WINDOW_S = 0.02


def _encode_fallback(value: Any) -> str:
    # Values msgspec cannot encode natively (exceptions, hosts, ...) are logged as their text.
    return str(value)


_encoder = msgspec.json.Encoder(enc_hook=_encode_fallback)

# The formatted "YYYY-MM-DDTHH:MM:SS" of the last second asked for: every line of that second shares
# it, so `strftime` runs once a second rather than once a line. A tuple, swapped in one assignment,
# so threads never see a second paired with another second's text.
_last_second: tuple[int, str] = (-1, "")


def iso_timestamp(epoch_ms: int) -> str:
    """UTC time with milliseconds and a `Z`: `2026-01-31T12:00:00.123Z`."""
    global _last_second  # noqa: PLW0603 (a one-entry cache)
    second, millis = divmod(epoch_ms, 1000)
    cached = _last_second
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _last_second = cached
    return f"{cached[1]}.{millis:03d}Z"


def _with_trace_ids(entry: dict[str, Any]) -> None:
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        entry["trace_id"] = format(span_context.trace_id, "032x")
        entry["span_id"] = format(span_context.span_id, "016x")


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one line of JSON with the current trace context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            # `created` is a float of seconds; rounded to microseconds first, like datetime does.
            "timestamp": iso_timestamp(round(record.created * 1_000_000) // 1000),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        _with_trace_ids(entry)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encoder.encode(entry).decode()


class _Flushed(threading.Event):
    """Queued behind the lines to flush; set once the writer has written everything before it."""


_Item = str | _Flushed


class _FormattingHandler(logging.Handler):
    """The root handler: formats on the logging thread, queues the finished line for the writer."""

    def __init__(self, submit: Any) -> None:
        super().__init__()
        self._submit = submit
        self.setFormatter(JsonLogFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._submit(self.format(record))
        except Exception:  # logging's own policy: report, never raise
            self.handleError(record)


class LogPipeline:
    """Root handler -> queue of finished lines -> writer thread -> stream (default: the current
    stderr, whatever `sys.stderr` is at the time: test runners swap it)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.submit = self._queue.put
        self.handler = _FormattingHandler(self.submit)
        self._writer = threading.Thread(
            target=self._write_forever, name="cqlstar-log-writer", daemon=True
        )
        self._writer.start()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every line queued so far is written (at shutdown: the process may exit without
        atexit). False if the writer did not get there in time."""
        flushed = _Flushed()
        self._queue.put(flushed)
        return flushed.wait(timeout_s)

    def writes_alone(self, logger: logging.Logger, level: int) -> bool:
        """Whether a record of `level` from `logger` would reach this pipeline and nothing else,
        unchanged (no filter on the way, no other handler): then `log_fields` may write it here
        directly."""
        handler = self.handler
        node: logging.Logger | None = logger
        while node is not None:
            if node.filters or node.disabled:
                return False
            if node.handlers:
                # The pipeline hangs off the root; a handler anywhere below it sees the record too.
                return (
                    node.parent is None
                    and len(node.handlers) == 1
                    and node.handlers[0] is handler
                    and not handler.filters
                    and level >= handler.level
                )
            if not node.propagate:
                return False
            node = node.parent
        return False

    def _write_forever(self) -> None:
        take = self._queue.get
        take_ready = self._queue.get_nowait
        while True:
            lines: list[str] = []
            flushed: list[_Flushed] = []
            item = take()
            if isinstance(item, str):
                time.sleep(BATCH_WINDOW_S)
            while True:
                if isinstance(item, str):
                    lines.append(item)
                else:
                    flushed.append(item)
                if len(lines) >= MAX_LINES_PER_WRITE:
                    break
                try:
                    item = take_ready()
                except queue.Empty:
                    break
            if lines:
                self._write(lines)
            for waiter in flushed:
                waiter.set()

    def _write(self, lines: list[str]) -> None:
        stream = sys.stderr if self._stream is None else self._stream
        try:
            lines.append("")  # the last line's newline
            stream.write("\n".join(lines))
            stream.flush()
        except Exception:  # a closed or broken stream must not kill the writer
            if logging.raiseExceptions and sys.__stderr__ is not None:
                traceback.print_exc(file=sys.__stderr__)


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


def log_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """Log `message` with `fields` as extra keys, as `logger.log(level, message, extra=fields)`
    would, but cheaply when the JSON pipeline alone writes the logger's records (see the module
    docstring). The caller checks `logger.isEnabledFor(level)` first."""
    pipeline = _pipeline
    if pipeline is None or not pipeline.writes_alone(logger, level):
        logger.log(level, message, extra=fields)
        return
    entry: dict[str, Any] = {
        "timestamp": iso_timestamp(time.time_ns() // 1_000_000),
        "level": logging.getLevelName(level),
        "logger": logger.name,
        "message": message,
    }
    _with_trace_ids(entry)
    for key, value in fields.items():
        entry.setdefault(key, value)
    pipeline.submit(_encoder.encode(entry).decode())
