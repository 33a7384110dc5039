"""`ReadWriteSpeculativeExecutionPolicy`: speculative execution with one delay for reads, another for
writes.

The driver asks its speculative execution policy for a plan only for statements marked idempotent
(`Session._create_response_future`); a plan says how long to wait before sending the request to the
next host of the query plan as well, and how many times. The first answer wins; the others are
ignored. The driver's own `ConstantSpeculativeExecutionPolicy` has one delay for every statement,
which does not suit both kinds:

* a read costs the replicas little and is answered in milliseconds, so a short delay (tens of ms)
  hides a slow or hung coordinator from the read latency;
* a conditional write (a lightweight transaction, `... IF NOT EXISTS`) sent twice runs two Paxos
  rounds on the same partition, and two live rounds can preempt each other until one fails with an
  unknown outcome; the driver then reports that failure, even though the other attempt may succeed.
  A write therefore speculates only after a long delay (`write_delay`, or never with None): long
  enough that the first coordinator is hung rather than slow, so the two rounds do not overlap.

A statement is a read when its CQL starts with SELECT (the layer's `cql.summarize`, cached).

Each plan counts the speculative attempts it started (`CountingPlan.fired`), which is how a span
tells them from retries (`telemetry`).
"""

from __future__ import annotations

from typing import Any

from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    NoSpeculativeExecutionPolicy,
    SpeculativeExecutionPlan,
    SpeculativeExecutionPolicy,
)
from cassandra.query import BatchStatement

from .cql import summarize

__all__ = ["CountingPlan", "ReadWriteSpeculativeExecutionPolicy"]

_NEVER = NoSpeculativeExecutionPolicy()


class ReadWriteSpeculativeExecutionPolicy(SpeculativeExecutionPolicy):  # type: ignore[misc]
    """Speculate reads after `read_delay` s and writes after `write_delay` s (None: never)."""

    def __init__(
        self, read_delay: float | None, write_delay: float | None, max_attempts: int
    ) -> None:
        for delay in (read_delay, write_delay):
            if delay is not None and delay < 0:
                raise ValueError("speculative delays must be >= 0")
        if max_attempts < 1:
            raise ValueError("speculative max_attempts must be >= 1")
        self.read_delay = read_delay
        self.write_delay = write_delay
        self.max_attempts = max_attempts
        self._reads = (
            _NEVER
            if read_delay is None
            else ConstantSpeculativeExecutionPolicy(read_delay, max_attempts)
        )
        self._writes = (
            _NEVER
            if write_delay is None
            else ConstantSpeculativeExecutionPolicy(write_delay, max_attempts)
        )

    def new_plan(self, keyspace: Any, statement: Any) -> Any:
        policy = self._reads if _is_read(statement) else self._writes
        return CountingPlan(policy.new_plan(keyspace, statement))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(read_delay={self.read_delay}, write_delay={self.write_delay}, "
            f"max_attempts={self.max_attempts})"
        )


def _is_read(statement: Any) -> bool:
    if isinstance(statement, BatchStatement):
        return False
    prepared = getattr(statement, "prepared_statement", None)
    text = getattr(prepared if prepared is not None else statement, "query_string", None)
    return isinstance(text, str) and summarize(text).operation == "SELECT"


class CountingPlan(SpeculativeExecutionPlan):  # type: ignore[misc]
    """A driver plan that counts the speculative attempts started under it.

    The driver asks its plan for the next delay when the request is first sent, and again each time
    the timer fired and a speculative attempt went out (`ResponseFuture._start_timer`); so every
    call after the first, while the plan still answers a delay, is one speculative attempt.
    """

    __slots__ = ("_calls", "_plan", "fired")

    def __init__(self, plan: Any) -> None:
        self._plan = plan
        self._calls = 0
        self.fired = 0

    def next_execution(self, host: Any) -> float:
        self._calls += 1
        if self._calls > 1:
            self.fired += 1
        delay: float = self._plan.next_execution(host)
        return delay
