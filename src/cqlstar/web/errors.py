"""The one place where failures become HTTP responses.

Every error body is `{"detail": ...}`. Validation failures answer 422 with a list of
`{"loc", "msg", "type"}` items; Cassandra's failures map to 400/503/504/500 by kind. No body ever
carries a stack trace, CQL text or bound values: unexpected errors are logged with the trace id and
answered with the route's operation and the error's class name only.

A route names its operation for those messages with `opt={"operation": "create user"}`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from cassandra import (
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.protocol import ErrorMessage
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
    HTTP_504_GATEWAY_TIMEOUT,
)
from litestar.types import ExceptionHandlersMap

from cqlstar.aiocassandra import BudgetExceeded
from cqlstar.database import CassandraUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = "5"
EMPTY_BODY = "The request body is empty: a JSON document is required"
_MISSING_BODY = "'data'"


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, headers=headers)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items: list[dict[str, Any]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for entry in extra:
        if not isinstance(entry, dict):
            continue
        source = entry.get("source") or "body"
        loc: list[Any] = [source, *_key_path(str(entry.get("key") or ""))]
        if loc == ["body", "data"] and entry.get("message") == _MISSING_BODY:
            # Litestar hands a handler no `data` at all for an empty body, and its signature check
            # then names the missing key the way a KeyError prints it.
            items.append({"loc": ["body"], "msg": EMPTY_BODY, "type": "value_error.missing"})
            continue
        if loc == ["body", "data"]:
            # Litestar names only its `data` parameter when the failure is inside a list body or
            # in a struct's own check; the msgspec error it wraps still has the exact path.
            loc = ["body", *_cause_path(exc)]
        items.append(
            {"loc": loc, "msg": str(entry.get("message", "invalid value")), "type": "value_error"}
        )
    if not items:
        # Malformed JSON and other decode failures arrive without a field list.
        items.append(
            {
                "loc": ["body"],
                "msg": exc.detail or "Invalid request body",
                "type": "value_error.jsondecode",
            }
        )
    return _detail(HTTP_422_UNPROCESSABLE_ENTITY, items, exc.headers)


# One step of a msgspec error path: `.name` or `[index]`.
_PATH_STEP = re.compile(r"([^.\[\]$]+)|\[(\d+)\]")
_CAUSE_PATH = re.compile(r"- at `\$\.data([^`]*)`$")


def _key_path(key: str) -> list[str | int]:
    """`users[1].name` -> ["users", 1, "name"]: FastAPI-style `loc` steps from Litestar's key."""
    return [int(index) if index else name for name, index in _PATH_STEP.findall(key)]


def _cause_path(exc: ValidationException) -> list[str | int]:
    cause = exc.__cause__
    match = _CAUSE_PATH.search(str(cause)) if isinstance(cause, msgspec.ValidationError) else None
    return _key_path(match.group(1)) if match else []


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == HTTP_400_BAD_REQUEST and _is_body_decode_error(exc):
        return _validation_error(request, ValidationException(detail=exc.detail))
    return _detail(exc.status_code, exc.detail, exc.headers)


def _is_body_decode_error(exc: HTTPException) -> bool:
    # Litestar reports an undecodable body as a 400 ClientException raised from its
    # SerializationException; the contract says 422. The cause, not the message, says which: a
    # message can be as bare as "Input data was truncated", and another 400 may mention JSON.
    return isinstance(exc.__cause__, SerializationException)


def _undecodable_body(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    # msgspec raises UnicodeDecodeError itself (not a DecodeError) for a body that is not UTF-8.
    return _validation_error(request, ValidationException(detail="Request body is not valid UTF-8"))


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _detail(
        HTTP_503_SERVICE_UNAVAILABLE, "Cassandra is unavailable", {"Retry-After": RETRY_AFTER_S}
    )


def _timed_out(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _detail(HTTP_504_GATEWAY_TIMEOUT, "Gateway Timeout")


# Protocol v5's CAS_WRITE_UNKNOWN: a lightweight transaction whose Paxos proposal reached fewer than
# a quorum of replicas (contention, or a replica lost mid-round), so it may or may not be applied.
# The driver has no exception class for it and raises the bare ErrorMessage.
_CAS_WRITE_UNKNOWN = 0x1700


def _server_error(request: Request[Any, Any, Any], exc: ErrorMessage) -> Response[Any]:
    if getattr(exc, "code", None) == _CAS_WRITE_UNKNOWN:
        # The same promise as a write timeout: the outcome is unknown, so 504, never 500.
        return _timed_out(request, exc)
    return _unexpected(request, exc)


def _invalid_request(request: Request[Any, Any, Any], exc: InvalidRequest) -> Response[Any]:
    return _detail(HTTP_400_BAD_REQUEST, "Invalid request for the database")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    operation = request.route_handler.opt.get("operation", "process request")
    log.exception("unhandled error", extra={"operation": operation, "path": request.url.path})
    return _detail(HTTP_500_INTERNAL_SERVER_ERROR, f"Failed to {operation}: {type(exc).__name__}")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: _validation_error,
    HTTPException: _http_error,
    CassandraUnavailable: _unavailable,
    NoHostAvailable: _unavailable,
    Unavailable: _unavailable,
    ReadTimeout: _timed_out,
    WriteTimeout: _timed_out,
    OperationTimedOut: _timed_out,
    BudgetExceeded: _timed_out,
    InvalidRequest: _invalid_request,
    ErrorMessage: _server_error,
    # The node went away with the request in flight (and the statement was not one the driver may
    # send again): the outcome is unknown, as after a timeout.
    ConnectionException: _timed_out,
    UnicodeDecodeError: _undecodable_body,
    Exception: _unexpected,
}
