"""The process's tracing: one TracerProvider, configured from the standard `OTEL_*` variables.

The SDK reads its own variables wherever it can: the sampler (`OTEL_TRACES_SAMPLER`,
`OTEL_TRACES_SAMPLER_ARG`), the resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), the batch
processor (`OTEL_BSP_*`) and the OTLP exporter (endpoint, headers, timeout, TLS, compression, with
their per-signal `OTEL_EXPORTER_OTLP_TRACES_*` forms). cqlstar decides only three things itself:

- whether to export at all: only when an OTLP endpoint is configured. Without one nothing is
  exported and nothing tries (and fails) to connect, but spans are still recorded for `/metrics`;
- which exporter: `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, `grpc` (the default) or `http/protobuf`
  (the SDK's exporters with cqlstar's faster encoding, `cqlstar.telemetry.otlp`);
- the defaults `service.name = cqlstar` and `service.version = cqlstar.__version__` (the variables
  above win over both).

`OTEL_SDK_DISABLED=true` turns all of it off: no provider, no spans, `/metrics` reports zeros.

The provider is the SDK's, as `cqlstar.telemetry.spans.FastTracerProvider` (the same spans, without
re-validating attributes that are plain values). There is one per process, installed as the global
one, because the Cassandra layer takes its tracer from the global API
(`opentelemetry.trace.get_tracer`). `setup_telemetry()` builds it on first call and hands the same
object to every later caller, so tests that build many apps in one process share it instead of
fighting over the global slot; `build_telemetry()` builds one without installing it (for tests of
the configuration itself).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from cqlstar import __version__
from cqlstar.telemetry.metrics import SpanMetrics
from cqlstar.telemetry.spans import FastTracerProvider

DEFAULT_SERVICE_NAME = "cqlstar"
INSTRUMENTATION_SCOPE = "cqlstar.http"
PROTOCOLS = ("grpc", "http/protobuf")

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


class TelemetryConfigError(ValueError):
    """An `OTEL_*` variable holds a value cqlstar cannot use."""


@dataclass(frozen=True)
class Telemetry:
    """The tracing pieces the app uses: a tracer for server spans and the span metrics."""

    tracer: trace.Tracer
    span_metrics: SpanMetrics
    # The SDK provider spans go to; None when OTEL_SDK_DISABLED.
    provider: TracerProvider | None = None
    # The batch processor that exports over OTLP; None when no endpoint is configured.
    export_processor: SpanProcessor | None = None
    # False when another component (e.g. `opentelemetry-instrument`) installed the provider first.
    owns_provider: bool = True

    @property
    def enabled(self) -> bool:
        """Whether spans are made at all (False under OTEL_SDK_DISABLED)."""
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


class RecordUnsampled(Sampler):
    """Wraps the configured sampler: what it drops is still recorded, just not exported.

    `/metrics` is computed from spans, so it would undercount as soon as a ratio sampler dropped
    some. With this wrapper every span reaches the processors; only the sampled ones carry the
    sampled flag, and the batch processor exports only those.
    """

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        # The configured sampler, when it is one whose decision `FastTracer` can take itself.
        self.parent_and_id_sampling = ParentBasedSampling.of(sampler)

    def should_sample(  # noqa: PLR0917 (the Sampler interface's signature)
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self.sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            # The attributes given at creation stay on the recorded span: /metrics reads some of
            # them (a query span is one with db.system.name = cassandra).
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordUnsampled{{{self.sampler.get_description()}}}"


class ParentBasedSampling:
    """The decision of a `ParentBased` sampler with the SDK's default per-parent samplers (follow
    the parent's sampled flag) and an always-on or trace-id-ratio root: the default sampler and
    `parentbased_traceidratio`. It depends only on the parent and the trace id, so `FastTracer` takes
    it without the three sampler calls and the context look-ups each of them repeats (see
    `cqlstar.telemetry.spans.ParentAndIdSampling`); tests compare it with the sampler's own."""

    __slots__ = ("_root_bound",)

    def __init__(self, root_bound: int | None) -> None:
        # None: every root span is sampled; else a root is sampled when its trace id's low 64 bits
        # are under the bound (TraceIdRatioBased's rule).
        self._root_bound = root_bound

    @classmethod
    def of(cls, sampler: Sampler) -> ParentBasedSampling | None:
        """The shortcut for `sampler`, or None when its decision needs the sampler itself.

        Reads `ParentBased`'s per-parent samplers from its private fields (opentelemetry-sdk 1.45,
        pinned like the rest of this package's use of SDK internals)."""
        if not isinstance(sampler, ParentBased):
            return None
        follows_parent = (
            sampler._remote_parent_sampled is ALWAYS_ON
            and sampler._local_parent_sampled is ALWAYS_ON
            and sampler._remote_parent_not_sampled is ALWAYS_OFF
            and sampler._local_parent_not_sampled is ALWAYS_OFF
        )
        root = sampler._root
        if not follows_parent:
            return None
        if root is ALWAYS_ON:
            return cls(None)
        if type(root) is TraceIdRatioBased:
            return cls(root.bound)
        return None

    def sampled(self, parent: SpanContext | None, trace_id: int) -> bool:
        if parent is not None:
            return parent.trace_flags.sampled
        bound = self._root_bound
        return bound is None or trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < bound


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
    # no arguments so the exporter reads its own variables (endpoint, headers, TLS, timeout). These
    # are the SDK's exporters with a faster encoder (see `cqlstar.telemetry.otlp`).
    from cqlstar.telemetry.otlp import GrpcSpanExporter, HttpSpanExporter

    if protocol == "grpc":
        return GrpcSpanExporter()
    return HttpSpanExporter()


def batch_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """The export processor: the SDK's batch processor (for cqlstar's OTLP exporters, its variant
    that queues spans encoded), sized by the `OTEL_BSP_*` variables or the SDK's defaults."""
    from cqlstar.telemetry.otlp import (  # the gRPC stack again: only when exporting
        EncodingBatchSpanProcessor,
        GrpcSpanExporter,
        HttpSpanExporter,
    )

    if isinstance(exporter, GrpcSpanExporter | HttpSpanExporter):
        return EncodingBatchSpanProcessor(exporter)
    return BatchSpanProcessor(exporter)


def build_telemetry() -> Telemetry:
    """A new provider configured from the environment, not installed globally."""
    span_metrics = SpanMetrics()
    if sdk_disabled():
        return Telemetry(tracer=trace.NoOpTracer(), span_metrics=span_metrics)
    provider = FastTracerProvider(
        sampler=RecordUnsampled(_get_from_env_or_default()), resource=service_resource()
    )
    provider.add_span_processor(span_metrics)
    export_processor: SpanProcessor | None = None
    if (protocol := export_protocol()) is not None:
        export_processor = batch_processor(_otlp_exporter(protocol))
        provider.add_span_processor(export_processor)
    return Telemetry(
        tracer=provider.get_tracer(INSTRUMENTATION_SCOPE, __version__),
        span_metrics=span_metrics,
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
    span_metrics = SpanMetrics()
    if isinstance(current, TracerProvider):
        # Someone configured the SDK before us (an auto-instrumentation launcher, a test harness):
        # export is theirs; the span metrics still need to see the spans.
        current.add_span_processor(span_metrics)
        return Telemetry(
            tracer=current.get_tracer(INSTRUMENTATION_SCOPE, __version__),
            span_metrics=span_metrics,
            provider=current,
            owns_provider=False,
        )
    return Telemetry(
        tracer=current.get_tracer(INSTRUMENTATION_SCOPE, __version__),
        span_metrics=span_metrics,
        owns_provider=False,
    )
