"""OTLP span export without the per-span protobuf objects: the wire format, written directly.

Why this exists: the SDK's exporters turn every span into protobuf message objects
(`encode_spans`: a `Span`, and a `KeyValue` plus an `AnyValue` per attribute), and that Python-level
construction is nearly all of what exporting costs. Measured on this service's spans (a get_user
request makes a SERVER span with ~8 attributes and a CLIENT query span with ~13), batches of 2048 to
the real collector: `encode_spans(...).SerializeToString()` 36 us per span, the whole gRPC export
38 us (HTTP: 39 us), i.e. ~75 us of the exporter thread's GIL time per request, more than the rest of
tracing together. Most of each span repeats from one span to the next (the route, the method, the
statement text, `db.system.name`, the resource, the scope), so `SpanEncoder` writes the
`ExportTraceServiceRequest` bytes itself and keeps the encoded bytes of repeated attribute pairs,
resources and scopes.

The output is byte for byte what `encode_spans(spans).SerializeToString()` gives for the same spans
(tests compare the two, and decode the bytes with the official `opentelemetry.proto` messages): the
same grouping by resource and scope in first-seen order, the fields in field-number order, the same
choices the SDK encoder makes (a `status` message on every span, link flags, no link trace state,
attributes it cannot encode left out with a logged error).

The exporters are the SDK's OTLP exporters with only the encoding replaced, so every
`OTEL_EXPORTER_OTLP_*` variable (endpoint, headers, TLS, timeout, compression) and the retry logic
still apply: `GrpcSpanExporter` sends the bytes through the same channel with an identity
serializer; `HttpSpanExporter` posts them through the same HTTP client.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as SdkGrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as SdkHttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

__all__ = ["GrpcSpanExporter", "HttpSpanExporter", "SpanEncoder"]

_logger = logging.getLogger(__name__)

_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MASK = (1 << 64) - 1

# Span.flags (fixed32): the SDK always says whether the parent is remote.
_FLAGS_LOCAL = _pack_fixed32(0x100)  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_FLAGS_REMOTE = _pack_fixed32(0x300)  # ... | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK

# Attribute pairs whose encoding is kept, at most. Past that the cache starts over: values that never
# repeat (paths with ids in them) must not grow it without bound.
MAX_CACHED_ATTRIBUTES = 4096


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer below 2**64."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Length prefixes of the sizes most fields have.
_LENGTHS = [_varint(n) for n in range(16384)]


def _length(size: int) -> bytes:
    return _LENGTHS[size] if size < 16384 else _varint(size)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _length(len(payload)) + payload


def _string(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode())


# Tags (field number << 3 | wire type), as bytes.
_T1_LEN = b"\x0a"
_T2_LEN = b"\x12"
_T3_LEN = b"\x1a"
_T4_LEN = b"\x22"
_T5_LEN = b"\x2a"
_T6_LEN = b"\x32"
_T7_LEN = b"\x3a"
_T9_LEN = b"\x4a"
_T11_LEN = b"\x5a"
_T13_LEN = b"\x6a"
_T15_LEN = b"\x7a"


def _any_value(value: Any) -> bytes:  # noqa: PLR0911 (one return per AnyValue kind)
    """`AnyValue` message bytes, with the SDK encoder's type order (bool before int)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _string(_T1_LEN, value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + _varint(value & _UINT64_MASK)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _field(_T7_LEN, value)
    if isinstance(value, Sequence):
        return _field(_T5_LEN, b"".join([_field(_T1_LEN, _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        pairs = b"".join([_field(_T1_LEN, _key_value(str(k), v)) for k, v in value.items()])
        return _field(_T6_LEN, pairs)
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    """`KeyValue` message bytes."""
    return _string(_T1_LEN, key) + _field(_T2_LEN, _any_value(value))


# Resources and scopes whose encoding is kept, at most (a process has a handful).
_MAX_CACHED_GROUPS = 64


class _ScopeGroup:
    __slots__ = ("head", "spans", "tail")

    def __init__(self, head: bytes, tail: bytes) -> None:
        self.head = head
        self.tail = tail
        self.spans: list[bytes] = []


class _ResourceGroup:
    __slots__ = ("head", "resource", "scopes", "tail")

    def __init__(self, resource: Resource, head: bytes, tail: bytes) -> None:
        self.resource = resource
        self.head = head
        self.tail = tail
        self.scopes: dict[InstrumentationScope | None, _ScopeGroup] = {}


class SpanEncoder:
    """Encodes finished SDK spans as one `ExportTraceServiceRequest` (see the module docstring).

    Keeps the encoded bytes of attribute pairs, resources and scopes between calls: use one encoder
    per exporter. Not meant for concurrent use (the batch processor exports one batch at a time);
    concurrent calls would still encode correctly, only cache less.
    """

    def __init__(self, max_cached_attributes: int = MAX_CACHED_ATTRIBUTES) -> None:
        self._max_cached_attributes = max_cached_attributes
        # (key, type of value, value) -> the attribute as a length-delimited KeyValue field, minus
        # its tag (the tag differs between spans, events and links). The type is part of the key
        # because True == 1 == 1.0 in Python.
        self._attributes: dict[tuple[str, type, Any], bytes] = {}
        # id -> (the object itself, so the id stays its own while cached, and its encoding).
        self._resources: dict[int, tuple[Resource, bytes, bytes]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, bytes, bytes]] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized `ExportTraceServiceRequest` for `spans`."""
        # Resource -> scope -> encoded spans, in first-seen order, grouped as the SDK groups them:
        # resources by equality (looked up by identity first: one provider's spans share one
        # resource object, and `Resource.__hash__` serialises the attributes to JSON), scopes by
        # their own equality (name, version, schema url).
        by_identity: dict[int, _ResourceGroup] = {}
        groups: list[_ResourceGroup] = []
        for span in spans:
            resource = span.resource
            group = by_identity.get(id(resource))
            if group is None:
                group = next((g for g in groups if g.resource == resource), None)
                if group is None:
                    group = _ResourceGroup(resource, *self._resource_bytes(resource))
                    groups.append(group)
                by_identity[id(resource)] = group
            scope = span.instrumentation_scope or None
            scope_group = group.scopes.get(scope)
            if scope_group is None:
                scope_group = _ScopeGroup(*self._scope_bytes(scope))
                group.scopes[scope] = scope_group
            scope_group.spans.append(self._span(span))
        out: list[bytes] = []
        for group in groups:
            parts = [group.head]
            for scope_group in group.scopes.values():
                body = scope_group.head + b"".join(scope_group.spans) + scope_group.tail
                parts.append(_field(_T2_LEN, body))
            parts.append(group.tail)
            out.append(_field(_T1_LEN, b"".join(parts)))
        return b"".join(out)

    def _resource_bytes(self, resource: Resource) -> tuple[bytes, bytes]:
        """ResourceSpans' `resource` field and its `schema_url` field (which follows the scopes)."""
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            if len(self._resources) >= _MAX_CACHED_GROUPS:
                self._resources.clear()
            head = _field(_T1_LEN, self._attribute_fields(_T1_LEN, resource.attributes))
            tail = _string(_T3_LEN, resource.schema_url) if resource.schema_url else b""
            cached = (resource, head, tail)
            self._resources[id(resource)] = cached
        return cached[1], cached[2]

    def _scope_bytes(self, scope: InstrumentationScope | None) -> tuple[bytes, bytes]:
        """ScopeSpans' `scope` field and its `schema_url` field (which follows the spans)."""
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1], cached[2]
        if scope is None:
            head, tail = _field(_T1_LEN, b""), b""
        else:
            body = b""
            if scope.name:
                body += _string(_T1_LEN, scope.name)
            if scope.version:
                body += _string(_T2_LEN, scope.version)
            body += self._attribute_fields(_T3_LEN, scope.attributes)
            head = _field(_T1_LEN, body)
            tail = _string(_T3_LEN, scope.schema_url) if scope.schema_url else b""
        if len(self._scopes) >= _MAX_CACHED_GROUPS:
            self._scopes.clear()
        self._scopes[id(scope)] = (scope, head, tail)
        return head, tail

    def _attribute_fields(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        """Repeated KeyValue fields with `tag`, from the cache where possible."""
        if not attributes:
            return b""
        cache = self._attributes
        parts: list[bytes] = []
        # BoundedAttributes (what SDK spans, events and links hold) iterates through Python-level
        # __iter__/__getitem__; its plain dict is read directly.
        plain = (
            getattr(attributes, "_dict", attributes)
            if type(attributes) is BoundedAttributes
            else attributes
        )
        for key, value in plain.items():
            kind = value.__class__
            cache_key = (key, kind, value) if kind in _CACHEABLE else None
            encoded = cache.get(cache_key) if cache_key is not None else None
            if encoded is None:
                try:
                    pair = _key_value(key, value)
                except Exception:  # the SDK encoder, too, leaves the pair out and logs
                    _logger.exception("Failed to encode key %s", key)
                    continue
                encoded = _length(len(pair)) + pair
                if cache_key is not None:
                    if len(cache) >= self._max_cached_attributes:
                        cache.clear()
                    cache[cache_key] = encoded
            parts.append(tag)
            parts.append(encoded)
        return b"".join(parts)

    def _span(self, span: ReadableSpan) -> bytes:
        context: SpanContext = span.get_span_context()  # type: ignore[assignment]
        parent = span.parent
        parts = [
            b"\x0a\x10",
            context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            context.span_id.to_bytes(8, "big"),
        ]
        trace_state = context.trace_state
        if trace_state:
            parts.append(_string(_T3_LEN, ",".join([f"{k}={v}" for k, v in trace_state.items()])))
        if parent:
            parts.append(b"\x22\x08")
            parts.append(parent.span_id.to_bytes(8, "big"))
        if span.name:
            parts.append(_string(_T5_LEN, span.name))
        parts.append(_KIND_FIELDS[span.kind])
        if span.start_time:
            parts.append(b"\x39" + _pack_fixed64(span.start_time))
        if span.end_time:
            parts.append(b"\x41" + _pack_fixed64(span.end_time))
        parts.append(self._attribute_fields(_T9_LEN, span._attributes))
        if dropped := span.dropped_attributes:
            parts.append(b"\x50" + _varint(dropped))
        for event in span.events:
            parts.append(_field(_T11_LEN, self._event(event)))
        if dropped := span.dropped_events:
            parts.append(b"\x60" + _varint(dropped))
        for link in span.links:
            parts.append(_field(_T13_LEN, self._link(link)))
        if dropped := span.dropped_links:
            parts.append(b"\x70" + _varint(dropped))
        status = span.status
        if status.description:
            parts.append(_status(status.status_code.value, status.description))
        else:
            parts.append(_STATUS_FIELDS[status.status_code])
        parts.append(b"\x85\x01")
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        body = b"".join(parts)
        return _T2_LEN + _length(len(body)) + body

    def _event(self, event: Any) -> bytes:
        body = b""
        if event.timestamp:
            body += b"\x09" + _pack_fixed64(event.timestamp)
        if event.name:
            body += _string(_T2_LEN, event.name)
        body += self._attribute_fields(_T3_LEN, event.attributes)
        if dropped := event.dropped_attributes:
            body += b"\x20" + _varint(dropped)
        return body

    def _link(self, link: Any) -> bytes:
        context: SpanContext = link.context
        body = (
            b"\x0a\x10"
            + context.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + context.span_id.to_bytes(8, "big")
            + self._attribute_fields(_T4_LEN, link.attributes)
        )
        if dropped := link.dropped_attributes:
            body += b"\x28" + _varint(dropped)
        return body + b"\x35" + (_FLAGS_REMOTE if context.is_remote else _FLAGS_LOCAL)


_CACHEABLE = frozenset({str, bool, int, float})

# Span.kind fields: the proto's SpanKind counts from UNSPECIFIED = 0, the API's from INTERNAL = 0.
_KIND_FIELDS = {kind: b"\x30" + bytes((kind.value + 1,)) for kind in SpanKind}


def _status(code: int, description: str | None) -> bytes:
    """Span.status: the SDK encoder sets it on every span, so it is there even when empty."""
    body = b""
    if description:
        body += _string(_T2_LEN, description)
    if code:
        body += b"\x18" + _varint(code)
    return _field(_T15_LEN, body)


_STATUS_FIELDS = {code: _status(code.value, None) for code in StatusCode}


class _PreEncodedStub:
    """The TraceService client stub, taking the request as bytes already serialized."""

    def __init__(self, channel: Any) -> None:
        self.Export: Callable[..., ExportTraceServiceResponse] = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,  # the request is bytes
            response_deserializer=ExportTraceServiceResponse.FromString,
            _registered_method=True,
        )


class GrpcSpanExporter(SdkGrpcSpanExporter):
    """The SDK's OTLP/gRPC span exporter (channel, variables, retries) with `SpanEncoder`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = SpanEncoder()
        # The base class builds its client from `_stub`, also when it reconnects.
        self._stub = _PreEncodedStub
        self._client = _PreEncodedStub(self._channel)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
        return self._encoder.encode(data)


class HttpSpanExporter(SdkHttpSpanExporter):
    """The SDK's OTLP/HTTP (protobuf) span exporter (client, variables, retries) with
    `SpanEncoder`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = SpanEncoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # The base class's export with the encoding swapped: it has no hook for that.
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                serialized = self._encoder.encode(spans)
            except Exception as error:  # a failed export, as the SDK reports it
                _logger.error("Failed to encode span batch: %s", error)  # noqa: TRY400
                result.error = error
                return SpanExportResult.FAILURE
            limit = self._max_request_size
            if limit > 0 and len(serialized) > limit:
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d.",
                    len(serialized),
                    limit,
                )
                return SpanExportResult.FAILURE
            exported = self._client.export(serialized)
            if not exported.success:
                result.error = exported.error
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
