"""Decisions of IdempotencyAwareRetryPolicy, one case per rule."""

from __future__ import annotations

import pytest
from cassandra import ConsistencyLevel, WriteType
from cassandra.connection import ConnectionException
from cassandra.policies import RetryPolicy
from cassandra.protocol import (
    IsBootstrappingErrorMessage,
    OverloadedErrorMessage,
    ServerError,
)
from cassandra.query import SimpleStatement

from cqlstar.aiocassandra import IdempotencyAwareRetryPolicy

RETRY, RETHROW, NEXT = RetryPolicy.RETRY, RetryPolicy.RETHROW, RetryPolicy.RETRY_NEXT_HOST
QUORUM = ConsistencyLevel.QUORUM
IDEMPOTENT = SimpleStatement("UPDATE t SET v = 1 WHERE k = 1", is_idempotent=True)
NOT_IDEMPOTENT = SimpleStatement("UPDATE t SET n = n + 1 WHERE k = 1")


@pytest.fixture
def policy() -> IdempotencyAwareRetryPolicy:
    return IdempotencyAwareRetryPolicy(max_retries=3)


def test_is_a_driver_retry_policy() -> None:
    assert isinstance(IdempotencyAwareRetryPolicy(), RetryPolicy)
    assert IdempotencyAwareRetryPolicy().max_retries == 3
    with pytest.raises(ValueError, match="max_retries"):
        IdempotencyAwareRetryPolicy(max_retries=-1)


@pytest.mark.parametrize(
    ("required", "received", "data_retrieved", "expected"),
    [
        (2, 2, False, (RETRY, QUORUM)),  # enough replicas, only digests: data likely next time
        (2, 3, False, (RETRY, QUORUM)),
        (2, 2, True, (RETHROW, None)),  # data was there and still timed out
        (2, 1, False, (RETHROW, None)),  # too few replicas: the same replicas would fail again
    ],
)
def test_read_timeout(
    policy: IdempotencyAwareRetryPolicy,
    required: int,
    received: int,
    data_retrieved: bool,
    expected: tuple[int, int | None],
) -> None:
    decision = policy.on_read_timeout(NOT_IDEMPOTENT, QUORUM, required, received, data_retrieved, 0)
    assert decision == expected


def test_read_timeout_bounded_by_max_retries(policy: IdempotencyAwareRetryPolicy) -> None:
    assert policy.on_read_timeout(None, QUORUM, 2, 2, False, 2) == (RETRY, QUORUM)
    assert policy.on_read_timeout(None, QUORUM, 2, 2, False, 3) == (RETHROW, None)


@pytest.mark.parametrize(
    "write_type",
    [WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH, WriteType.BATCH_LOG],
)
def test_write_timeout_retries_idempotent_writes(
    policy: IdempotencyAwareRetryPolicy, write_type: int
) -> None:
    assert policy.on_write_timeout(IDEMPOTENT, QUORUM, write_type, 2, 1, 0) == (RETRY, QUORUM)


@pytest.mark.parametrize(
    "write_type",
    [WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH, WriteType.BATCH_LOG],
)
def test_write_timeout_never_retries_non_idempotent_writes(
    policy: IdempotencyAwareRetryPolicy, write_type: int
) -> None:
    assert policy.on_write_timeout(NOT_IDEMPOTENT, QUORUM, write_type, 2, 1, 0) == (RETHROW, None)


@pytest.mark.parametrize("write_type", [WriteType.COUNTER, WriteType.CAS, WriteType.VIEW])
def test_write_timeout_never_retries_unsafe_write_types(
    policy: IdempotencyAwareRetryPolicy, write_type: int
) -> None:
    assert policy.on_write_timeout(IDEMPOTENT, QUORUM, write_type, 2, 1, 0) == (RETHROW, None)


def test_write_timeout_bounded_by_max_retries(policy: IdempotencyAwareRetryPolicy) -> None:
    assert policy.on_write_timeout(IDEMPOTENT, QUORUM, WriteType.SIMPLE, 2, 1, 3) == (
        RETHROW,
        None,
    )


def test_bound_statements_carry_the_prepared_flag() -> None:
    # What the driver hands the policy for a prepared statement is the BoundStatement.
    from cassandra.query import BoundStatement, PreparedStatement

    prepared = PreparedStatement(
        None, b"id", None, "UPDATE t SET v = ? WHERE k = ?", "ks", 5, None, None
    )
    prepared.is_idempotent = True
    bound = BoundStatement(prepared)
    policy = IdempotencyAwareRetryPolicy()
    assert policy.on_write_timeout(bound, QUORUM, WriteType.SIMPLE, 1, 0, 0) == (RETRY, QUORUM)


def test_unavailable_tries_next_host_once(policy: IdempotencyAwareRetryPolicy) -> None:
    # The request never reached a replica: safe for any statement.
    assert policy.on_unavailable(NOT_IDEMPOTENT, QUORUM, 2, 1, 0) == (NEXT, None)
    assert policy.on_unavailable(NOT_IDEMPOTENT, QUORUM, 2, 1, 1) == (RETHROW, None)
    assert IdempotencyAwareRetryPolicy(max_retries=0).on_unavailable(None, QUORUM, 2, 1, 0) == (
        RETHROW,
        None,
    )


@pytest.mark.parametrize(
    "error", [OverloadedErrorMessage(0, "busy", {}), IsBootstrappingErrorMessage(0, "boot", {})]
)
def test_request_error_not_executed_is_retried_for_anything(
    policy: IdempotencyAwareRetryPolicy, error: BaseException
) -> None:
    assert policy.on_request_error(NOT_IDEMPOTENT, QUORUM, error, 0) == (NEXT, None)


@pytest.mark.parametrize("error", [ConnectionException("reset"), ServerError(0, "boom", {})])
def test_request_error_with_unknown_outcome_needs_idempotence(
    policy: IdempotencyAwareRetryPolicy, error: BaseException
) -> None:
    assert policy.on_request_error(IDEMPOTENT, QUORUM, error, 0) == (NEXT, None)
    assert policy.on_request_error(NOT_IDEMPOTENT, QUORUM, error, 0) == (RETHROW, None)
    # A PREPARE (no statement) is idempotent by nature.
    assert policy.on_request_error(None, None, error, 0) == (NEXT, None)


def test_request_error_bounded_by_max_retries(policy: IdempotencyAwareRetryPolicy) -> None:
    error = OverloadedErrorMessage(0, "busy", {})
    assert policy.on_request_error(IDEMPOTENT, QUORUM, error, 3) == (RETHROW, None)
