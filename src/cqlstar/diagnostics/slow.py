"""`GET /slow_query` (about 5 s) and `GET /long_running_query` (about 10 s).

These routes exist to exercise request budgets and to show that one slow request does not hold up
the others. What makes them slow is a choice, stated here because it is not a database query:
Cassandra offers no way to make a query slow on purpose (CQL has no sleep, and user-defined
functions, the only way to run code server-side, are disabled by default). So the wait is an
`asyncio.sleep` standing in for a slow database call. It is as non-blocking as a real one: the event
loop serves other requests meanwhile. After the wait, one real round trip to Cassandra runs with the
request's remaining budget as its driver timeout, so the route also answers 503 when Cassandra is
down.

With `X-Request-Timeout` shorter than the wait, `RequestBudgetMiddleware` cancels the handler when
the budget runs out and answers 504 `{"detail": "Gateway Timeout"}` at that moment, not after the
full wait.
"""

from __future__ import annotations

import asyncio

from litestar import Controller, get
from litestar.di import NamedDependency

from cqlstar.database import CassandraConnection, CassandraUnavailable
from cqlstar.diagnostics.schemas import data_route_errors
from cqlstar.identity import Role, requires
from cqlstar.web.schemas import Message

SLOW_QUERY_S = 5.0
LONG_RUNNING_QUERY_S = 10.0


class SlowQueryController(Controller):
    tags = ["diagnostics"]
    opt = requires(Role.ADMIN)

    @get(
        "/slow_query",
        operation_id="slow_query",
        summary="Answer after about 5 s (a simulated slow query); honours X-Request-Timeout",
        opt={"operation": "run slow query"},
        responses=data_route_errors("run slow query"),
        cache=False,
    )
    async def slow_query(self, connection: NamedDependency[CassandraConnection]) -> Message:
        """Waits 5 s without blocking the event loop (`asyncio.sleep`: Cassandra cannot be made
        slow on purpose), then makes one real Cassandra round trip. Send `X-Request-Timeout: 1`
        to get a 504 after one second."""
        await _simulated_slow_call(connection, SLOW_QUERY_S)
        return Message("Slow query completed")

    @get(
        "/long_running_query",
        operation_id="long_running_query",
        summary="Answer after about 10 s (a simulated long query) while other requests stay fast",
        opt={"operation": "run long query"},
        responses=data_route_errors("run long query"),
        cache=False,
    )
    async def long_running_query(self, connection: NamedDependency[CassandraConnection]) -> Message:
        """Waits 10 s without blocking the event loop (`asyncio.sleep`), then makes one real
        Cassandra round trip. Other requests are served as usual meanwhile."""
        await _simulated_slow_call(connection, LONG_RUNNING_QUERY_S)
        return Message("Long query completed")


async def _simulated_slow_call(connection: CassandraConnection, seconds: float) -> None:
    # A service still connecting answers 503 at once, not after the whole wait.
    if not connection.is_connected:
        raise CassandraUnavailable
    await asyncio.sleep(seconds)
    await connection.release_version()
