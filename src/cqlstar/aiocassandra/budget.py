"""A time budget shared by every query a task makes: what callers above set once, not per query.

A caller (the web layer for a request with `X-Request-Timeout`, a WebSocket handler for one
message) opens `time_budget(seconds)`; inside it, every `AsyncSession` query gets the time left as
its driver timeout, capped by the timeout it was given or the cluster's request timeout. A query
started with nothing left raises `BudgetExceeded` without reaching Cassandra. Code that must run
even when the budget is spent (clean-up after a failed request) opens `outside_budget()`.

The deadline lives in a context variable, so it follows the task that set it and the tasks it
starts, and costs one lookup per query when no budget is set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("aiocassandra_deadline", default=None)


class BudgetExceeded(TimeoutError):
    """The time budget of the current task ran out before a query could start."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Bound every query made inside the block to `seconds` from now, all together."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def outside_budget() -> Iterator[None]:
    """Queries inside the block ignore the enclosing budget (and use their own timeouts)."""
    token = _deadline.set(None)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(cap: float | None = None) -> float | None:
    """Seconds left in the current budget, at most `cap`; `cap` itself when there is no budget.

    Raises BudgetExceeded when the budget is spent.
    """
    deadline = _deadline.get()
    if deadline is None:
        return cap
    left = deadline - time.monotonic()
    if left <= 0:
        raise BudgetExceeded
    return left if cap is None else min(left, cap)
