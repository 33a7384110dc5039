"""SDK spans without re-validating attributes that need no validation.

Every attribute given to an SDK span goes through `BoundedAttributes`: a recursive clean of each
value (type checks through the `Sequence`/`Mapping` ABCs for the mapping itself, then per value) and
a lock per insertion. For a plain `str`, `bool`, `int` or `float` value under a non-empty `str` key,
with no value-length limit and room under the count limit, that clean returns its input unchanged:
it is pure cost, and it was the largest single part of making this service's two spans per request
(36% of the profile of a server + query span pair; ~40 us per request on an idle core).

`FastTracerProvider` is the SDK provider whose tracers make `FastSpan`s: the same SDK span class (so
processors, exporters and `/metrics` see nothing different), whose attributes, at creation and in
`set_attributes`, go straight into the span's `BoundedAttributes` when every pair is plain as above,
and through the SDK's own cleaning otherwise (a value-length limit set, a sequence value, a key
already present, a full span...). The sampler still sees the creation attributes, and the span gets
whatever the sampling result says, exactly as in `Tracer.start_span`; the start logic below follows
the SDK's step by step (opentelemetry-sdk 1.45) and tests compare its spans with the SDK's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.util import types

__all__ = ["FastSpan", "FastTracer", "FastTracerProvider", "all_plain", "set_plain_attributes"]

_logger = logging.getLogger(__name__)

_PLAIN_VALUE_TYPES = frozenset({str, bool, int, float})


def all_plain(attributes: Mapping[str, Any]) -> bool:
    """Whether every pair is a non-empty `str` key with a `str`/`bool`/`int`/`float` value."""
    for key, value in attributes.items():
        if value.__class__ not in _PLAIN_VALUE_TYPES or key.__class__ is not str or not key:
            return False
    return True


def set_plain_attributes(
    store: BoundedAttributes, attributes: Mapping[str, Any], *, known_plain: bool = False
) -> bool:
    """Put `attributes` into `store` as they are, if cleaning would leave every pair unchanged and
    drop none; False (and nothing stored) otherwise. `known_plain`: `all_plain` already said yes."""
    if store.max_value_len is not None:
        return False
    existing = store._dict
    if store.maxlen is not None and len(existing) + len(attributes) > store.maxlen:
        return False
    if not known_plain and not all_plain(attributes):
        return False
    # The SDK moves a re-set key to the end: leave that case to it.
    if existing and not existing.keys().isdisjoint(attributes):
        return False
    with store._lock:
        existing.update(attributes)
    return True


class FastSpan(sdk_trace._Span):
    """The SDK span, taking plain attributes without cleaning them (see the module docstring)."""

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            store = cast("BoundedAttributes", self._attributes)
            if not set_plain_attributes(store, attributes):
                store._set_items(attributes)


class FastTracer(sdk_trace.Tracer):
    """The SDK tracer, making `FastSpan`s."""

    def start_span(  # noqa: PLR0917 (the Tracer interface's signature)
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: trace_api.SpanKind = trace_api.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        # Step for step `sdk_trace.Tracer.start_span`, except where the span is built.
        links = links or ()
        current_context = trace_api.get_current_span(context).get_span_context()
        if not self._is_enabled():
            return trace_api.NonRecordingSpan(context=current_context)
        parent_span_context: trace_api.SpanContext | None = None
        if current_context is not None and current_context.is_valid:
            parent_span_context = current_context
            trace_id = current_context.trace_id
        else:
            trace_id = self.id_generator.generate_trace_id()
        sampling_result = self.sampler.should_sample(
            context, trace_id, name, kind, attributes, links
        )
        decision = sampling_result.decision
        trace_flags = trace_api.TraceFlags(
            trace_api.TraceFlags.SAMPLED
            if decision is Decision.RECORD_AND_SAMPLE
            else trace_api.TraceFlags.DEFAULT
        )
        if parent_span_context is None:
            random_trace_id = self.id_generator.is_trace_id_random()
        else:
            random_trace_id = parent_span_context.trace_flags.random_trace_id
        if random_trace_id:
            trace_flags = trace_api.TraceFlags(trace_flags | trace_api.TraceFlags.RANDOM_TRACE_ID)
        span_context = trace_api.SpanContext(
            trace_id,
            self.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=trace_flags,
            trace_state=sampling_result.trace_state,
        )
        record_end_metrics = self._tracer_metrics.start_span(parent_span_context, decision)
        if decision is Decision.DROP:
            return trace_api.NonRecordingSpan(context=span_context)
        granted = sampling_result.attributes
        deferred = granted if granted and all_plain(granted) else None
        span = FastSpan(
            name=name,
            context=span_context,
            parent=parent_span_context,
            sampler=self.sampler,
            resource=self.resource,
            # Plain attributes are put in below, past the cleaning; anything else is cleaned here.
            attributes=granted if deferred is None else None,
            span_processor=self.span_processor,
            kind=kind,
            links=links,
            instrumentation_info=self.instrumentation_info,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
            limits=self._span_limits,
            instrumentation_scope=self._instrumentation_scope,
            record_end_metrics=record_end_metrics,
        )
        if deferred is not None:
            store = cast("BoundedAttributes", span._attributes)
            if not set_plain_attributes(store, deferred, known_plain=True):
                store._set_items(deferred)
        span.start(start_time=start_time, parent_context=context)
        return span


class FastTracerProvider(sdk_trace.TracerProvider):
    """The SDK provider, whose tracers are `FastTracer`s."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> trace_api.Tracer:
        tracer = super().get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        if type(tracer) is sdk_trace.Tracer:
            # The provider built (and keeps) an SDK tracer; FastTracer only overrides a method, so
            # the object becomes one in place and every later get_tracer returns it as such.
            tracer.__class__ = FastTracer
        return tracer
