"""Tracing, structured logs and span-derived metrics for cqlstar.

- `setup`: the process's TracerProvider from the standard `OTEL_*` variables (`setup_telemetry`).
- `spans`: the SDK provider cqlstar builds, minus the re-validation of plain attributes.
- `otlp`: the SDK's OTLP exporters with a direct wire-format encoder (several times cheaper).
- `http`: the SERVER span and access-log line for each request (`ServerSpanMiddleware`).
- `metrics`: the `/metrics` figures, computed from finished spans (`SpanMetrics`).
- `logs`: one JSON object per log line, with the trace and span ids (`configure_logging`).
- `plugin`: the Litestar wiring (`TelemetryPlugin`).

The web layer and the Cassandra layer only use the OpenTelemetry API; the SDK and the exporter are
known here alone.
"""

from cqlstar.telemetry.http import ServerSpanMiddleware
from cqlstar.telemetry.logs import JsonLogFormatter, configure_logging
from cqlstar.telemetry.metrics import QueryPerformance, SpanFigures, SpanMetrics
from cqlstar.telemetry.plugin import TelemetryPlugin, telemetry_from_state
from cqlstar.telemetry.setup import Telemetry, build_telemetry, setup_telemetry

__all__ = [
    "JsonLogFormatter",
    "QueryPerformance",
    "ServerSpanMiddleware",
    "SpanFigures",
    "SpanMetrics",
    "Telemetry",
    "TelemetryPlugin",
    "build_telemetry",
    "configure_logging",
    "setup_telemetry",
    "telemetry_from_state",
]
