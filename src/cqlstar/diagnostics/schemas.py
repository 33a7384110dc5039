"""Response bodies of the diagnostics routes, and the error responses they document.

Field names follow the HTTP contract (docs: `shared/contract/users-api.md`), which keeps the names
clients of the original service already parse.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from cqlstar.web.schemas import ErrorDetail, ValidationErrorDetail

Seconds = Annotated[float, msgspec.Meta(ge=0, description="seconds")]
Count = Annotated[int, msgspec.Meta(ge=0)]


class PerformanceReport(msgspec.Struct, frozen=True, kw_only=True):
    requests: Annotated[int, msgspec.Meta(ge=1, description="reads issued")]
    successful_requests: Annotated[Count, msgspec.Meta(description="reads that returned")]
    total_time: Annotated[Seconds, msgspec.Meta(description="wall time for all the reads")]
    avg_time_per_request: Annotated[Seconds, msgspec.Meta(description="total_time / requests")]
    requests_per_second: Annotated[float, msgspec.Meta(ge=0, description="requests / total_time")]
    mode: Literal["async", "sync"]


class QueryErrorReport(msgspec.Struct, frozen=True, kw_only=True):
    test: Literal["query_error_session_safety"] = "query_error_session_safety"
    error_caught: Annotated[str, msgspec.Meta(description="the server's message for the bad query")]
    session_still_works: bool
    session_open: bool
    cassandra_version: str


class StreamingErrorReport(msgspec.Struct, frozen=True, kw_only=True):
    test: Literal["streaming_error_session_safety"] = "streaming_error_session_safety"
    streaming_error_caught: bool
    error_message: str
    session_still_streams: bool
    rows_after_error: Annotated[
        Count, msgspec.Meta(description="rows read by the valid stream after the failed one")
    ]
    session_open: bool


class AgeFilterCount(msgspec.Struct, frozen=True):
    age: Annotated[int, msgspec.Meta(description="the stream's filter: rows with age >= this")]
    count: Annotated[Count, msgspec.Meta(description="rows that stream read")]


class ConcurrentStreamsReport(msgspec.Struct, frozen=True, kw_only=True):
    test: Literal["concurrent_streams"] = "concurrent_streams"
    streams_completed: Count
    all_streams_independent: bool
    results: list[AgeFilterCount]
    session_still_open: bool


class NestedContextsReport(msgspec.Struct, frozen=True, kw_only=True):
    test: Literal["nested_context_managers"] = "nested_context_managers"
    events: Annotated[list[str], msgspec.Meta(description="opens and closes, in the order seen")]
    correct_order: bool
    row_count: Count
    main_session_unaffected: bool


class CancellationReport(msgspec.Struct, frozen=True, kw_only=True):
    test: Literal["streaming_cancellation"] = "streaming_cancellation"
    was_cancelled: bool
    rows_processed_before_cancel: Count
    session_still_works: bool
    new_stream_worked: bool
    session_open: bool


class ResourceStatus(msgspec.Struct, frozen=True, kw_only=True):
    session_open: bool
    cluster_open: bool
    keyspace: str
    session_id: Annotated[str, msgspec.Meta(description="stable for the life of the process")]
    cluster_id: Annotated[str, msgspec.Meta(description="stable for the life of the process")]


def _error(description: str, detail: str) -> ResponseSpec:
    return ResponseSpec(
        ErrorDetail,
        description=description,
        generate_examples=False,
        examples=[Example(value={"detail": detail})],
    )


CASSANDRA_UNAVAILABLE = _error(
    "Cassandra cannot be reached (or the service is still connecting); see Retry-After",
    "Cassandra is unavailable",
)
GATEWAY_TIMEOUT = _error(
    "The X-Request-Timeout budget, or Cassandra's own timeout, ran out", "Gateway Timeout"
)
BAD_TIMEOUT_HEADER = _error(
    "X-Request-Timeout is not a number of seconds in (0, 60]", "Invalid X-Request-Timeout header"
)


# The routes that take query parameters answer 422 when one does not validate.
QUERY_VALIDATION = {
    422: ResponseSpec(
        ValidationErrorDetail,
        description="A query parameter is not an integer in its range",
        generate_examples=False,
        examples=[
            Example(
                value={
                    "detail": [
                        {
                            "loc": ["query", "requests"],
                            "msg": "Expected `int` <= 1000",
                            "type": "value_error",
                        }
                    ]
                }
            )
        ],
    )
}


def unexpected_failure(operation: str) -> ResponseSpec:
    return _error("An unexpected failure, named by class only", f"Failed to {operation}: Error")


def data_route_errors(operation: str) -> dict[int, ResponseSpec]:
    """The failures every diagnostics route that talks to Cassandra can answer with."""
    return {
        400: BAD_TIMEOUT_HEADER,
        500: unexpected_failure(operation),
        503: CASSANDRA_UNAVAILABLE,
        504: GATEWAY_TIMEOUT,
    }
