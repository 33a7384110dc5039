"""Every use the async layer makes of cassandra-driver's private internals, and nowhere else.

The driver's public API has no way to do a few things the layer needs: read a page's paging state
and column names without building a driver ResultSet, give each page fetch a timer of its own, free
a finished request at once (see `release_timer`), prepare a statement without blocking a thread, and
see which node a request went to before it answered, and tell a retry from a speculative attempt. Each function here names the private field it
touches; `tests/aiocassandra/integration/test_aio_driver_fence.py` checks every one against the
installed driver, and `pyproject.toml` bounds the driver to the versions those tests ran on. An
upgrade starts by running them.
"""

from __future__ import annotations

import time
from typing import Any

from cassandra.cluster import ResponseFuture
from cassandra.protocol import PrepareMessage
from cassandra.query import PreparedStatement

__all__ = [
    "attempted_host",
    "column_names",
    "new_prepare_request",
    "paging_state",
    "pooled_hosts",
    "prepared_statement_from",
    "release_timer",
    "restart_request_timer",
    "retry_count",
    "speculative_plan",
]


def paging_state(response_future: Any) -> bytes | None:
    """Where the latest page ended (`ResponseFuture._paging_state`); None after the last page."""
    state: bytes | None = response_future._paging_state
    return state


def column_names(response_future: Any) -> list[str] | None:
    """The columns of the latest answer, as the server named them (`ResponseFuture._col_names`)."""
    names: list[str] | None = response_future._col_names
    return names


def attempted_host(response_future: Any) -> Any:
    """The node the current attempt went to, even before it answered (`_current_host`)."""
    return getattr(response_future, "_current_host", None)


def retry_count(response_future: Any) -> int:
    """How many times the retry policy had the request sent again (`_query_retries`, the count the
    driver passes to the policy as `retry_num`); the public `attempted_hosts` lists retries and
    speculative executions alike."""
    retries: int = getattr(response_future, "_query_retries", 0)
    return retries


def speculative_plan(response_future: Any) -> Any:
    """The speculative execution plan the driver made for this request (`_spec_execution_plan`)."""
    return getattr(response_future, "_spec_execution_plan", None)


def restart_request_timer(response_future: Any, timeout: float | None) -> None:
    """Give the next page its own client-side timeout, counted from now.

    The driver arms its request timer only once per ResponseFuture and measures it from the first
    request: later pages would either inherit a deadline long past or, as the stale timer object is
    never cleared, get no timer at all. Resetting the start time (`_start_time`) and the timer
    (`_timer`) makes `start_fetching_next_page` arm a fresh one, so each page fetch times out on its
    own with the driver's usual OperationTimedOut (and its usual handling of the orphaned stream id).
    """
    if timeout is not None:
        response_future.timeout = timeout
    response_future._start_time = time.time()
    response_future._timer = None


def release_timer(response_future: Any) -> None:
    """Let go of the driver's request timer (`_timer`) once an answer is in.

    The driver cancels the timer when the answer arrives but keeps it on the ResponseFuture, and the
    timer holds a bound method of that ResponseFuture: a reference cycle. Left in place, every query
    (future, message, bound statement, timer, event, locks, rows: about 30 objects) outlives its
    last use until the garbage collector finds the cycle, which under load made the collector walk
    every query's objects once more. Dropping the reference lets reference counting free them at
    once. Only after an answer (rows or the driver's error): an abandoned request still needs its
    timer, which is how the driver releases the request's stream id.
    """
    response_future._timer = None


def pooled_hosts(driver_session: Any) -> tuple[Any, ...]:
    """The nodes the session holds connection pools to (`Session._pools`)."""
    return tuple(driver_session._pools)


def new_prepare_request(
    driver_session: Any, cql: str, timeout: float, host: Any = None
) -> ResponseFuture:
    """A PREPARE request, sent by the caller with `send_request()`, answered through callbacks.

    The driver's own `Session.prepare` blocks its calling thread until the answer; building the
    request the way it does internally lets the answer reach the event loop like any other.
    """
    return ResponseFuture(
        driver_session, PrepareMessage(query=cql, keyspace=None), None, timeout, host=host
    )


def prepared_statement_from(response: Any, cql: str, cluster: Any) -> PreparedStatement:
    """The PreparedStatement for a PREPARE answer, built as the driver's `Session.prepare` does."""
    return PreparedStatement.from_message(
        response.query_id,
        response.bind_metadata,
        response.pk_indexes,
        cluster.metadata,
        cql,
        None,
        cluster.protocol_version,
        response.column_metadata,
        response.result_metadata_id,
        cluster.column_encryption_policy,
    )
