"""build_telemetry: what the standard OTEL_* variables turn into."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind

from cqlstar import __version__
from cqlstar.telemetry.otlp import EncodingBatchSpanProcessor
from cqlstar.telemetry.setup import (
    Telemetry,
    TelemetryConfigError,
    build_telemetry,
    export_protocol,
)

OTEL_VARS = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def built() -> Iterator[list[Telemetry]]:
    """Telemetry objects a test builds, shut down afterwards (their batch threads stop)."""
    made: list[Telemetry] = []
    yield made
    for telemetry in made:
        telemetry.shutdown()


def build(built: list[Telemetry]) -> Telemetry:
    telemetry = build_telemetry()
    built.append(telemetry)
    return telemetry


def test_without_an_endpoint_no_span_is_made_and_nothing_complains(
    built: list[Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    telemetry = build(built)
    assert telemetry.export_processor is None
    assert telemetry.provider is None
    assert not telemetry.enabled
    assert isinstance(telemetry.tracer, NoOpTracer)
    with telemetry.tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
        assert not span.is_recording()
    assert telemetry.flush(timeout_s=5)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_an_endpoint_exports_over_grpc_by_default(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    telemetry = build(built)
    # The SDK's batch processor, queueing spans encoded, in front of the SDK's gRPC exporter with
    # cqlstar's encoder; sized as the SDK sizes it.
    assert isinstance(telemetry.export_processor, EncodingBatchSpanProcessor)
    assert isinstance(telemetry.export_processor.span_exporter, GrpcSpanExporter)
    batch = telemetry.export_processor._batch_processor
    assert (batch._max_queue_size, batch._max_export_batch_size) == (2048, 512)


def test_http_protobuf_protocol_selects_the_http_exporter(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    telemetry = build(built)
    assert isinstance(telemetry.export_processor, BatchSpanProcessor)
    exporter = telemetry.export_processor.span_exporter
    assert isinstance(exporter, HttpSpanExporter)
    # The exporter read the base endpoint itself and added the signal path.
    assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"


def test_per_signal_variables_count_and_win() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert export_protocol(env) == "http/protobuf"
    assert export_protocol({}) is None
    assert export_protocol({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}) is None


def test_an_unsupported_protocol_stops_the_start() -> None:
    with pytest.raises(TelemetryConfigError, match="http/json"):
        export_protocol(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            }
        )


def test_resource_defaults_to_cqlstar_and_its_version(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    telemetry = build(built)
    assert telemetry.provider is not None
    attributes = telemetry.provider.resource.attributes
    assert attributes["service.name"] == "cqlstar"
    assert attributes["service.version"] == __version__
    assert attributes["telemetry.sdk.language"] == "python"


def test_resource_variables_win_over_the_defaults(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment.name=staging"
    )
    telemetry = build(built)
    assert telemetry.provider is not None
    attributes = telemetry.provider.resource.attributes
    assert attributes["service.name"] == "from-attrs"
    assert attributes["deployment.environment.name"] == "staging"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "users-api")
    telemetry = build(built)
    assert telemetry.provider is not None
    assert telemetry.provider.resource.attributes["service.name"] == "users-api"


def test_sdk_disabled_means_no_provider_and_no_spans(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    telemetry = build(built)
    assert telemetry.provider is None
    assert telemetry.export_processor is None
    assert not telemetry.enabled
    span = telemetry.tracer.start_span("GET /", kind=SpanKind.SERVER)
    assert not span.is_recording()
    assert telemetry.flush()


def test_sampler_comes_from_the_environment_and_unsampled_spans_are_not_recorded(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry = build(built)
    assert telemetry.provider is not None
    assert "AlwaysOffSampler" in telemetry.provider.sampler.get_description()
    exported = InMemorySpanExporter()
    telemetry.provider.add_span_processor(SimpleSpanProcessor(exported))
    with telemetry.tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
        # Sampling saves its share: a dropped span costs no recording at all.
        assert not span.is_recording()
    assert exported.get_finished_spans() == ()


def test_ratio_sampler_argument_is_read(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    telemetry = build(built)
    assert telemetry.provider is not None
    assert "0.25" in telemetry.provider.sampler.get_description()


def test_an_unverified_sdk_exports_with_the_sdks_own_grpc_exporter(
    built: list[Telemetry], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cqlstar.telemetry import otlp

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setattr(otlp, "installed_sdk_version", lambda: "9.99.0")
    telemetry = build(built)
    assert isinstance(telemetry.export_processor, BatchSpanProcessor)
    assert not isinstance(telemetry.export_processor, EncodingBatchSpanProcessor)
    exporter = telemetry.export_processor.span_exporter
    assert isinstance(exporter, GrpcSpanExporter)
    assert not isinstance(exporter, otlp.GrpcSpanExporter)
    assert "9.99.0" in caplog.text


def test_the_encoder_is_verified_for_the_installed_sdk() -> None:
    from cqlstar.telemetry import otlp

    assert otlp.verified_for_installed_sdk(), otlp.installed_sdk_version()
