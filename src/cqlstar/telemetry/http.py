"""One HTTP SERVER span, the request's metrics and one access-log line per request: a small
pure-ASGI middleware, the service's one instrumentation point per request.

It wraps Litestar's whole ASGI handler, outside routing and exception handling, so requests that
never reach a handler (unknown route 404, wrong method 405) get a span and a log line too, and the
status it records is the one the client received.

The span follows the current HTTP semantic conventions: named `{method} {route template}`
(`GET /users/{user_id}`, never the raw path; only `GET` when no route matched), with
`http.request.method`, `url.path`, `url.scheme`, `server.address`, `server.port` and
`user_agent.original` given at creation (where samplers see them), then `http.route`,
`http.response.status_code`, and for 5xx answers `error.type` plus an ERROR status. Left out: the
merely recommended client address and protocol version (per-request cost), and the query string
(not needed to find a request, and it may carry values clients consider private).

An incoming W3C `traceparent`/`tracestate` (or whatever `OTEL_PROPAGATORS` selects) makes the span
a child of the caller's. The span is the current one while the app runs, so the Cassandra layer's
query spans become its children, and log lines written meanwhile carry its ids.

This runs on every request, so it does the least it can: one pass over the headers, propagation
only when a propagation header is present, no attribute work when tracing is disabled, one
attribute update at the end, no spans per body chunk.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from cqlstar.telemetry.logs import log_fields
from cqlstar.telemetry.metrics import ServiceMetrics

access_log = logging.getLogger("cqlstar.access")

# Where `record_exception_type` leaves the failing exception's type for the middleware: the scope is
# the one object both the exception hook and the middleware see for a request.
ERROR_TYPE_SCOPE_KEY = "cqlstar.error_type"

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def qualified_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def record_exception_type(exc: Exception, scope: Scope) -> None:
    """Litestar `after_exception` hook: remember what failed, for `error.type` on a 5xx answer.

    Exceptions that Litestar's handlers turn into responses never reach the middleware, so it learns
    their type here. Only the type is kept: messages can carry data the spans must not.
    """
    cast("dict[str, Any]", scope)[ERROR_TYPE_SCOPE_KEY] = qualified_name(type(exc))


def _server_address(host: bytes | None, scope: Scope) -> tuple[str | None, int | None]:
    """`server.address`/`server.port` from the Host header, else from the socket the server bound."""
    if host:
        text = host.decode("latin-1")
        name, sep, port = text.rpartition(":")
        # "[::1]:8000" and "example.com:8000" have a port; "[::1]" and "example.com" do not.
        if sep and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
            return name, int(port)
        return text, _DEFAULT_PORTS.get(scope.get("scheme", "http"))
    server = scope.get("server")
    if server:
        return server[0], server[1]
    return None, None


class ServerSpanMiddleware:
    """ASGI middleware: a SERVER span and an access-log line for each HTTP request."""

    def __init__(
        self, app: ASGIApp, tracer: trace.Tracer, metrics: ServiceMetrics, *, tracing: bool = True
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.metrics = metrics
        self.tracing = tracing
        # Header names the configured propagator reads (traceparent, tracestate, baggage by default).
        self._propagation_headers = frozenset(
            field.encode("latin-1") for field in propagate.get_global_textmap().fields
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        self.metrics.request_started()
        method: str = scope["method"]
        path = scope["path"]  # before routing, which rewrites it for mounted apps
        status = 0
        token: Token[Context] | None
        if self.tracing:
            span, parent = self._start_span(scope, method, path)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
        else:
            span = INVALID_SPAN
            token = self._continue_callers_trace(scope)

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error_type: str | None = None
        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException as exc:
            error_type = qualified_name(type(exc))
            # Nothing sent and the app failed: the server answers 500. A cancellation (the client
            # went away) gets no status at all.
            if status == 0 and isinstance(exc, Exception):
                status = 500
            raise
        finally:
            route: str | None = scope.get("path_template") or None
            if status >= 500 and error_type is None:
                error_type = cast("dict[str, Any]", scope).get(ERROR_TYPE_SCOPE_KEY) or str(status)
            if span.is_recording():
                _finish_span_attributes(span, method, route, status, error_type)
            span.end()
            self.metrics.request_ended(
                route,
                method if method in _KNOWN_METHODS else "_OTHER",
                status,
                time.perf_counter_ns() - started,
            )
            # Logged while the span is still current, so the line carries its trace and span ids.
            if access_log.isEnabledFor(logging.INFO):
                _log_request(method, route, path, status, started)
            if token is not None:
                otel_context.detach(token)

    def _continue_callers_trace(self, scope: HTTPScope) -> Token[Context] | None:
        """Without tracing, a caller's trace context still becomes the current one, so log lines
        written for the request carry the caller's trace id; only requests that send one pay."""
        carrier: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name in self._propagation_headers:
                key, text = name.decode("latin-1"), value.decode("latin-1")
                carrier = carrier or {}
                carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
        return otel_context.attach(propagate.extract(carrier)) if carrier else None

    def _start_span(self, scope: HTTPScope, method: str, path: str) -> tuple[Span, Context | None]:
        carrier: dict[str, str] | None = None
        host: bytes | None = None
        user_agent: bytes | None = None
        for name, value in scope["headers"]:
            if name in self._propagation_headers:
                key, text = name.decode("latin-1"), value.decode("latin-1")
                carrier = carrier or {}
                carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
            elif name == b"host":
                host = value
            elif name == b"user-agent":
                user_agent = value
        parent = propagate.extract(carrier) if carrier else None
        known = method in _KNOWN_METHODS
        # Given at creation, where samplers can see them (the semantic conventions ask for that).
        attributes: dict[str, str | int] = {
            "http.request.method": method if known else "_OTHER",
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
        }
        if not known:
            attributes["http.request.method_original"] = method
        address, port = _server_address(host, scope)
        if address is not None:
            attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
        if user_agent:
            attributes["user_agent.original"] = user_agent.decode("latin-1")
        span = self.tracer.start_span(
            method if known else "HTTP", parent, SpanKind.SERVER, attributes=attributes
        )
        return span, parent


def _log_request(method: str, route: str | None, path: str, status: int, started_ns: int) -> None:
    fields: dict[str, object] = {"method": method, "route": route}
    if route is None:  # no template to group by: say what was asked for
        fields["path"] = path
    fields["status"] = status or None  # None: no response was sent
    fields["duration_ms"] = round((time.perf_counter_ns() - started_ns) / 1e6, 3)
    log_fields(access_log, logging.INFO, "request", fields)


def _finish_span_attributes(
    span: trace.Span, method: str, route: str | None, status: int, error_type: str | None
) -> None:
    attributes: dict[str, str | int] = {}
    if route is not None:
        span.update_name(f"{method if method in _KNOWN_METHODS else 'HTTP'} {route}")
        attributes["http.route"] = route
    if status:
        attributes["http.response.status_code"] = status
    if error_type is not None:
        attributes["error.type"] = error_type
        span.set_status(Status(StatusCode.ERROR))
    span.set_attributes(attributes)
