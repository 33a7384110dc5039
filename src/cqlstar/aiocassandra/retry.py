"""`IdempotencyAwareRetryPolicy`: the driver retry policy the layer installs by default.

How the driver consults it (cassandra-driver 3.x, `ResponseFuture._set_result`): on a coordinator's
ReadTimeout, WriteTimeout or Unavailable error it calls `on_read_timeout`, `on_write_timeout` or
`on_unavailable` with the `Statement` being executed as `query` and `retry_num` = retries so far for
this request; on a connection error or an Overloaded/IsBootstrapping/Server/Truncate error it calls
`on_request_error`. The driver itself never looks at `query.is_idempotent` on these paths (only for
speculative execution), and its default `RetryPolicy.on_request_error` retries *every* request on the
next host — a non-idempotent write that broke a connection mid-flight may then be applied twice.
This policy makes that check. `query` is None for internal requests such as PREPARE, which are
idempotent by nature.

Decisions (every retry counts toward `max_retries`; past it, the error is raised):

* read timeout: retry on the same coordinator, same consistency, when enough replicas answered
  (received >= required) but the data replica was not among them (`data_retrieved` false) — the
  data is likely to arrive on a second try. Otherwise raise: too few replicas answered, and a
  retry would face the same replicas.
* write timeout: only idempotent statements are retried, on the same coordinator, for write types
  SIMPLE, BATCH, UNLOGGED_BATCH and BATCH_LOG. COUNTER writes (never idempotent, whatever the
  flag), CAS (Paxos; the outcome is unknown) and VIEW/CDC writes are never retried.
* unavailable: the coordinator never forwarded the request, so it is safe to retry any statement,
  once, on the next host (its view of the ring may differ).
* request error: Overloaded and IsBootstrapping mean the request was not executed: retry on the next
  host. Connection, server and truncate errors leave the outcome unknown: retry on the next host
  only if the statement is idempotent.
"""

from __future__ import annotations

from typing import Any

from cassandra import WriteType
from cassandra.policies import RetryPolicy
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage

__all__ = ["IdempotencyAwareRetryPolicy"]

Decision = tuple[int, Any]

_RETRYABLE_WRITE_TYPES = frozenset(
    {WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH, WriteType.BATCH_LOG}
)
# Errors meaning the coordinator refused the request before executing it.
_NOT_EXECUTED_ERRORS = (OverloadedErrorMessage, IsBootstrappingErrorMessage)


def _is_idempotent(query: Any) -> bool:
    # None: a request the driver builds itself (PREPARE), idempotent by nature.
    return query is None or bool(getattr(query, "is_idempotent", False))


class IdempotencyAwareRetryPolicy(RetryPolicy):  # type: ignore[misc]  # driver is untyped
    """Retries only what is safe to retry, at most `max_retries` times per request."""

    def __init__(self, max_retries: int = 3) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        super().__init__()
        self.max_retries = max_retries

    def on_read_timeout(  # noqa: PLR0917  # the driver calls it positionally
        self,
        query: Any,
        consistency: Any,
        required_responses: int,
        received_responses: int,
        data_retrieved: bool,
        retry_num: int,
    ) -> Decision:
        if retry_num >= self.max_retries:
            return self.RETHROW, None
        if received_responses >= required_responses and not data_retrieved:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_write_timeout(  # noqa: PLR0917  # the driver calls it positionally
        self,
        query: Any,
        consistency: Any,
        write_type: int,
        required_responses: int,
        received_responses: int,
        retry_num: int,
    ) -> Decision:
        if retry_num >= self.max_retries or not _is_idempotent(query):
            return self.RETHROW, None
        if write_type in _RETRYABLE_WRITE_TYPES:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_unavailable(
        self,
        query: Any,
        consistency: Any,
        required_replicas: int,
        alive_replicas: int,
        retry_num: int,
    ) -> Decision:
        if retry_num == 0 and self.max_retries > 0:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_request_error(
        self, query: Any, consistency: Any, error: BaseException, retry_num: int
    ) -> Decision:
        if retry_num >= self.max_retries:
            return self.RETHROW, None
        if isinstance(error, _NOT_EXECUTED_ERRORS) or _is_idempotent(query):
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_retries={self.max_retries})"
