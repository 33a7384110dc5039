"""Tracing, structured logs and span-derived metrics for cqlstar.

- `setup`: the process's TracerProvider from the standard `OTEL_*` variables (`setup_telemetry`).
- `otlp`: the SDK's OTLP/gRPC exporter with a direct wire-format encoder (several times cheaper),
  used only with the SDK version it was verified on.
- `http`: the SERVER span, the request's metrics and its access-log line (`ServerSpanMiddleware`).
- `metrics`: the `/metrics` figures, fed by the request and query instrumentation points
  (`ServiceMetrics`), exact whatever the sampling and whether or not spans are made.
- `logs`: one JSON object per log line, with the trace and span ids (`configure_logging`).
- `plugin`: the Litestar wiring (`TelemetryPlugin`).

The web layer and the Cassandra layer only use the OpenTelemetry API; the SDK and the exporter are
known here alone.
"""

from cqlstar.telemetry.http import ServerSpanMiddleware
from cqlstar.telemetry.logs import JsonLogFormatter, configure_logging
from cqlstar.telemetry.metrics import QueryPerformance, ServiceFigures, ServiceMetrics
from cqlstar.telemetry.plugin import TelemetryPlugin
from cqlstar.telemetry.setup import Telemetry, build_telemetry, setup_telemetry

__all__ = [
    "JsonLogFormatter",
    "QueryPerformance",
    "ServerSpanMiddleware",
    "ServiceFigures",
    "ServiceMetrics",
    "Telemetry",
    "TelemetryPlugin",
    "build_telemetry",
    "configure_logging",
    "setup_telemetry",
]
