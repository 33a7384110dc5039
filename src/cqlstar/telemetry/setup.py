"""The process's tracing: one TracerProvider, configured from the standard `OTEL_*` variables,
made only when spans have somewhere to go.

The SDK reads its own variables wherever it can: the sampler (`OTEL_TRACES_SAMPLER`,
`OTEL_TRACES_SAMPLER_ARG`), the resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), the batch
processor (`OTEL_BSP_*`) and the OTLP exporter (endpoint, headers, timeout, TLS, compression, with
their per-signal `OTEL_EXPORTER_OTLP_TRACES_*` forms). cqlstar decides only three things itself:

- whether to trace at all: only when an OTLP endpoint is configured. Without one no span is made
  (the tracer is the API's no-op tracer), nothing tries to connect, and tracing costs next to
  nothing; `/metrics` does not need spans (`cqlstar.telemetry.metrics`);
- which exporter: `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, `grpc` (the default, with cqlstar's
  faster encoding where it was verified, `cqlstar.telemetry.otlp`) or `http/protobuf` (the SDK's);
- the defaults `service.name = cqlstar` and `service.version = cqlstar.__version__` (the variables
  above win over both).

Sampling is the SDK's own, and it saves what it drops: an unsampled span is a non-recording one.
`OTEL_SDK_DISABLED=true` turns tracing off even with an endpoint.

There is one provider per process, installed as the global one, because the Cassandra layer takes
its tracer from the global API (`opentelemetry.trace.get_tracer`). `setup_telemetry()` builds it on
first call and hands the same object to every later caller, so tests that build many apps in one
process share it instead of fighting over the global slot; `build_telemetry()` builds one without
installing it (for tests of the configuration itself).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from cqlstar import __version__
from cqlstar.telemetry.metrics import ServiceMetrics

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "cqlstar"
INSTRUMENTATION_SCOPE = "cqlstar.http"
PROTOCOLS = ("grpc", "http/protobuf")

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


class TelemetryConfigError(ValueError):
    """An `OTEL_*` variable holds a value cqlstar cannot use."""


@dataclass(frozen=True)
class Telemetry:
    """The tracing pieces the app uses: a tracer for server spans, and the metrics."""

    tracer: trace.Tracer
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    # The SDK provider spans go to; None when nothing is traced.
    provider: TracerProvider | None = None
    # The batch processor that exports over OTLP; None when no endpoint is configured.
    export_processor: SpanProcessor | None = None
    # False when another component (e.g. `opentelemetry-instrument`) installed the provider first.
    owns_provider: bool = True

    @property
    def enabled(self) -> bool:
        """Whether spans are made at all."""
        return not isinstance(self.tracer, trace.NoOpTracer)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export the spans still queued; True when everything went out in time."""
        if self.provider is None:
            return True
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        """Flush and stop the provider's processors (only if cqlstar created the provider)."""
        if self.provider is not None and self.owns_provider:
            self.provider.shutdown()


def sdk_disabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def export_protocol(environ: Mapping[str, str] | None = None) -> str | None:
    """The OTLP protocol to export with, or None when no endpoint is configured."""
    env = os.environ if environ is None else environ
    if not any(env.get(name, "").strip() for name in _ENDPOINT_VARS):
        return None
    protocol = next((env[n].strip() for n in _PROTOCOL_VARS if env.get(n, "").strip()), "grpc")
    if protocol not in PROTOCOLS:
        raise TelemetryConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: expected one of {', '.join(PROTOCOLS)}"
        )
    return protocol


def service_resource() -> Resource:
    """The SDK's resource (env variables, process, SDK) with cqlstar's name and version as defaults."""
    resource = Resource({SERVICE_VERSION: __version__}).merge(Resource.create())
    # The SDK fills in "unknown_service..." when neither OTEL_SERVICE_NAME nor
    # OTEL_RESOURCE_ATTRIBUTES names the service.
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _otlp_exporter(protocol: str) -> SpanExporter:
    # Imported on demand: the gRPC stack is slow to import and unused without an endpoint. Built with
    # no arguments so the exporter reads its own variables (endpoint, headers, TLS, timeout).
    if protocol == "grpc":
        from cqlstar.telemetry import otlp

        if otlp.verified_for_installed_sdk():
            return otlp.GrpcSpanExporter()
        log.warning(
            "the installed opentelemetry-sdk %s is not the one cqlstar's OTLP encoder was verified "
            "with (%s); exporting with the SDK's own encoder",
            otlp.installed_sdk_version(),
            otlp.VERIFIED_SDK_SERIES,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def batch_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """The export processor: the SDK's batch processor (for cqlstar's gRPC exporter, its variant
    that queues spans encoded), sized by the `OTEL_BSP_*` variables or the SDK's defaults."""
    from cqlstar.telemetry.otlp import EncodingBatchSpanProcessor, GrpcSpanExporter

    if isinstance(exporter, GrpcSpanExporter):
        return EncodingBatchSpanProcessor(exporter)
    return BatchSpanProcessor(exporter)


def build_telemetry() -> Telemetry:
    """A new provider configured from the environment, not installed globally; none at all (and
    a no-op tracer) when spans would have nowhere to go."""
    if sdk_disabled() or (protocol := export_protocol()) is None:
        return Telemetry(tracer=trace.NoOpTracer())
    provider = TracerProvider(resource=service_resource())  # the sampler from OTEL_TRACES_SAMPLER
    export_processor = batch_processor(_otlp_exporter(protocol))
    provider.add_span_processor(export_processor)
    return Telemetry(
        tracer=provider.get_tracer(INSTRUMENTATION_SCOPE, __version__),
        provider=provider,
        export_processor=export_processor,
    )


_process_telemetry: Telemetry | None = None
_process_lock = threading.Lock()


def setup_telemetry() -> Telemetry:
    """The process's telemetry: built and installed as the global provider on first call."""
    global _process_telemetry  # noqa: PLW0603 (one per process, like the global provider)
    with _process_lock:
        if _process_telemetry is None:
            _process_telemetry = _install()
        return _process_telemetry


def _install() -> Telemetry:
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):  # nobody installed one yet
        telemetry = build_telemetry()
        if telemetry.provider is not None:
            trace.set_tracer_provider(telemetry.provider)
        return telemetry
    # Someone configured tracing before us (an auto-instrumentation launcher, a test harness): the
    # spans and their export are theirs.
    return Telemetry(
        tracer=current.get_tracer(INSTRUMENTATION_SCOPE, __version__),
        provider=current if isinstance(current, TracerProvider) else None,
        owns_provider=False,
    )
