"""FastTracerProvider against the SDK's TracerProvider: the same spans, whatever the attributes.

Each scenario runs on both providers with the same ids, clock-free fields compared, and attribute
order included (exporters write attributes in the order the span holds them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
    set_span_in_context,
)

from cqlstar.telemetry.setup import RecordUnsampled
from cqlstar.telemetry.spans import FastSpan, FastTracerProvider, set_plain_attributes


class CountingIds(IdGenerator):
    """Deterministic ids, so both providers' spans can be compared field by field."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        # Low 64 bits spread over their range, so a trace-id ratio sampler samples some roots only.
        n = next(self._next)
        return (n << 64) | (n * 0x9E3779B97F4A7C15) & 0xFFFF_FFFF_FFFF_FFFF


class AttributeSeer(Sampler):
    """Records the attributes samplers are shown, and adds one of its own."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        attributes = kwargs.get("attributes", args[4] if len(args) > 4 else None)
        self.seen.append(dict(attributes or {}))
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE, {**(attributes or {}), "sampler.added": "yes"}
        )

    def get_description(self) -> str:
        return "AttributeSeer"


class EveryEndedSpan(SpanProcessor):
    """Keeps every span that ends, sampled or not (as the span metrics see them)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


Scenario = Callable[[Tracer], None]


def run(
    provider_class: type[TracerProvider],
    scenario: Scenario,
    *,
    sampler: Sampler = ALWAYS_ON,
    limits: SpanLimits | None = None,
) -> list[tuple[Any, ...]]:
    provider = provider_class(
        sampler=sampler, id_generator=CountingIds(), span_limits=limits, shutdown_on_exit=False
    )
    ended = EveryEndedSpan()
    provider.add_span_processor(ended)
    try:
        scenario(provider.get_tracer("test", "1.0"))
    finally:
        provider.shutdown()
    return [describe(span) for span in ended.spans]


def describe(span: ReadableSpan) -> tuple[Any, ...]:
    return (
        span.name,
        span.kind,
        span.context,
        span.parent,
        list((span.attributes or {}).items()),
        span.dropped_attributes,
        span.status.status_code,
        span.status.description,
        [(e.name, list((e.attributes or {}).items())) for e in span.events],
        [(link.context, list((link.attributes or {}).items())) for link in span.links],
        span.dropped_links,
        span.instrumentation_scope,
    )


def assert_same(scenario: Scenario, **options: Any) -> list[tuple[Any, ...]]:
    fast = run(FastTracerProvider, scenario, **options)
    assert fast == run(TracerProvider, scenario, **options)
    assert fast, "the scenario made no span"
    return fast


PLAIN = {"http.request.method": "GET", "server.port": 8000, "flag": True, "ratio": 0.25}


def request_shaped(tracer: Tracer) -> None:
    server = tracer.start_span("GET", kind=SpanKind.SERVER, attributes=PLAIN)
    query = tracer.start_span(
        "SELECT ks.t",
        set_span_in_context(server),
        SpanKind.CLIENT,
        attributes={"db.system.name": "cassandra", "db.query.text": "SELECT 1"},
    )
    query.set_attributes({"db.response.returned_rows": 1, "server.address": "10.0.0.1"})
    query.set_status(Status(StatusCode.ERROR, "boom"))
    query.end()
    server.update_name("GET /items/{id}")
    server.set_attributes({"http.route": "/items/{id}", "http.response.status_code": 200})
    server.end()


def not_plain(tracer: Tracer) -> None:
    odd: dict[Any, Any] = {
        "list": ["a", "b"],
        "tuple": (1, 2),
        "bytes": b"\x00",
        "none": None,
        "": "empty key",
        "object": object.__new__(type("Thing", (), {"__str__": lambda self: "a thing"})),
        "plain": "fine",
    }
    span = tracer.start_span("odd", attributes=odd)
    span.set_attributes({"later.list": [1.5], "later": "x", "": "dropped again"})
    span.end()


def overlapping_keys(tracer: Tracer) -> None:
    span = tracer.start_span("overlap", attributes={"a": 1, "b": 2, "c": 3})
    span.set_attributes({"a": 10, "d": 4})  # a re-set key moves to the end
    span.set_attributes({})
    span.set_attribute("b", 20)
    span.end()
    span.set_attributes({"after.end": 1})  # ignored, with the SDK's warning


def with_events_links_and_parents(tracer: Tracer) -> None:
    remote = SpanContext(0xABC << 64, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    link = Link(SpanContext(5 << 64, 6, is_remote=False), {"link.kind": "follows"})
    span = tracer.start_span(
        "linked",
        set_span_in_context(NonRecordingSpan(remote)),
        SpanKind.CONSUMER,
        attributes={"k": "v"},
        links=[link],
        start_time=1_000,
    )
    span.add_event("event", {"n": 1})
    span.end(end_time=2_000)


@pytest.mark.parametrize(
    "scenario", [request_shaped, not_plain, overlapping_keys, with_events_links_and_parents]
)
def test_spans_match_the_sdks(scenario: Scenario) -> None:
    assert_same(scenario)


@pytest.mark.parametrize(
    "limits",
    [
        SpanLimits(max_span_attributes=3),  # the plain attributes do not all fit
        SpanLimits(max_span_attribute_length=4),  # strings get truncated
        SpanLimits(max_span_attributes=0),
    ],
)
def test_limits_apply_as_in_the_sdk(limits: SpanLimits) -> None:
    server = assert_same(request_shaped, limits=limits)[-1]
    assert server[5] > 0 or any(  # something was dropped, or a string was cut
        isinstance(value, str) and len(value) <= 4 for _, value in server[4]
    )


def under_remote_parents(tracer: Tracer) -> None:
    """Root spans, and children of sampled and unsampled remote parents with a trace state."""
    state = TraceState([("vendor", "value")])
    for trace_flags in (TraceFlags(TraceFlags.SAMPLED), TraceFlags(TraceFlags.DEFAULT)):
        remote = SpanContext(
            0x1234 << 64, 0x99, is_remote=True, trace_flags=trace_flags, trace_state=state
        )
        parent = tracer.start_span("child", set_span_in_context(NonRecordingSpan(remote)))
        tracer.start_span("grandchild", set_span_in_context(parent), attributes={"a": 1}).end()
        parent.end()
    for _ in range(8):  # roots: with a ratio sampler, some sampled and some not
        tracer.start_span("root", attributes={"r": True}).end()


@pytest.mark.parametrize(
    "sampler",
    [
        RecordUnsampled(ParentBased(ALWAYS_ON)),
        RecordUnsampled(ParentBasedTraceIdRatio(0.5)),
        RecordUnsampled(ParentBased(TraceIdRatioBased(0.5), local_parent_sampled=ALWAYS_OFF)),
    ],
    ids=["default", "parentbased_traceidratio", "not_following_the_parent"],
)
def test_the_sampling_shortcut_decides_as_the_sampler(sampler: RecordUnsampled) -> None:
    spans = assert_same(under_remote_parents, sampler=sampler)
    assert {span[2].trace_flags.sampled for span in spans} == {True, False}
    assert {span[2].trace_state.get("vendor") for span in spans} == {"value", None}


def test_the_sampling_shortcut_is_taken_only_for_samplers_it_knows() -> None:
    assert RecordUnsampled(ParentBased(ALWAYS_ON)).parent_and_id_sampling is not None
    assert RecordUnsampled(ParentBasedTraceIdRatio(0.1)).parent_and_id_sampling is not None
    assert RecordUnsampled(ALWAYS_ON).parent_and_id_sampling is None
    assert RecordUnsampled(ParentBased(AttributeSeer())).parent_and_id_sampling is None
    assert (
        RecordUnsampled(
            ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)
        ).parent_and_id_sampling
        is None
    )


@pytest.mark.parametrize(
    "sampler",
    [ALWAYS_OFF, ParentBased(ALWAYS_ON), RecordUnsampled(ALWAYS_OFF)],
    ids=["always_off", "parentbased_always_on", "record_unsampled"],
)
def test_sampling_decisions_match_the_sdks(sampler: Sampler) -> None:
    def scenario(tracer: Tracer) -> None:
        request_shaped(tracer)
        tracer.start_span("extra", attributes={"x": 1}).end()

    if sampler is ALWAYS_OFF:
        assert run(FastTracerProvider, scenario, sampler=sampler) == []
        assert run(TracerProvider, scenario, sampler=sampler) == []
        return
    spans = assert_same(scenario, sampler=sampler)
    if isinstance(sampler, RecordUnsampled):  # recorded, not sampled, attributes kept
        assert all(not span[2].trace_flags.sampled for span in spans)
        assert ("db.system.name", "cassandra") in spans[0][4]


def test_the_sampler_sees_the_creation_attributes_and_decides_the_spans() -> None:
    seers = [AttributeSeer(), AttributeSeer()]
    fast = run(FastTracerProvider, request_shaped, sampler=seers[0])
    assert fast == run(TracerProvider, request_shaped, sampler=seers[1])
    assert seers[0].seen == seers[1].seen
    assert seers[0].seen[0] == PLAIN
    assert ("sampler.added", "yes") in fast[-1][4]


def test_tracers_are_fast_and_shared() -> None:
    provider = FastTracerProvider(shutdown_on_exit=False)
    tracer = provider.get_tracer("scope", "1")
    assert tracer is provider.get_tracer("scope", "1")
    span = tracer.start_span("s", attributes={"a": 1})
    assert isinstance(span, FastSpan)
    span.end()
    provider.shutdown()


def test_set_plain_attributes_refuses_what_cleaning_would_change() -> None:
    plain_store = BoundedAttributes(maxlen=4, immutable=False)
    refused: Sequence[dict[Any, Any]] = [
        {"list": [1]},
        {"": "x"},
        {1: "int key"},
        {"none": None},
        {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5},  # over maxlen
    ]
    for attributes in refused:
        assert not set_plain_attributes(plain_store, attributes)
    assert dict(plain_store) == {}
    assert set_plain_attributes(plain_store, {"a": "x", "b": True})
    assert not set_plain_attributes(plain_store, {"a": "again"})  # already there
    assert dict(plain_store) == {"a": "x", "b": True}
